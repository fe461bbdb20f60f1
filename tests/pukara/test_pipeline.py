"""The live path on real samples: parse → (enrich) → batched, deduplicated store."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cases.store.tables import alerts
from collectors.sources.files import FileSource
from pukara.core.config import load_settings
from pukara.core.schema import RawReport
from pukara.wiring import Services, build_services

MUNTAHA = "suricata/Muntaha-Ghafoor-eve.json"


@pytest.fixture
def built(pukara_home: Path) -> Services:
    services = build_services(load_settings())
    yield services
    services.close()


def _ingest_file(built: Services, path: Path, **kwargs: object):
    with FileSource().open_report(path, **kwargs) as report:  # type: ignore[arg-type]
        return built.pipeline.ingest(report, batch_size=200)


def _row(built: Services, title: str):
    with built.store.read() as conn:
        return conn.execute(select(alerts).where(alerts.c.title == title)).one()


def test_suricata_sample_is_stored_with_repeats_folded(built: Services,
                                                       shared_data: Path) -> None:
    result = _ingest_file(built, shared_data / MUNTAHA)
    assert result.rejected == 0
    assert result.accepted + result.duplicates == 59 + 110 + 1176
    assert built.alerts.count() == result.accepted
    scan = _row(built, "Nmap SYN Port Scan Detected")
    assert scan.count == 50 and scan.source == "suricata"
    assert _row(built, "Possible Metasploit Connection").count == 1


def test_reingesting_adds_no_rows_and_raises_counts(built: Services, shared_data: Path) -> None:
    first = _ingest_file(built, shared_data / MUNTAHA)
    again = _ingest_file(built, shared_data / MUNTAHA)
    assert again.accepted == 0
    assert again.duplicates == first.accepted + first.duplicates
    assert built.alerts.count() == first.accepted
    assert _row(built, "Nmap SYN Port Scan Detected").count == 100


def test_entity_of_the_channel_overrides_the_records(built: Services, shared_data: Path) -> None:
    from pukara.core.schema import Entity

    built.identity.add_entity(Entity(id="minsa", name="Ministerio de Salud", sector="health"))
    _ingest_file(built, shared_data / MUNTAHA, entity_id="minsa", fmt="suricata")
    with built.store.read() as conn:
        entities = set(conn.execute(select(alerts.c.entity_id).distinct()).scalars())
    assert entities == {"minsa"}


def test_bad_records_are_located_and_the_rest_kept(built: Services) -> None:
    body = (
        b'{"source": "sensor-1", "title": "SSH brute force", "severity": "high"}\n'
        b'{"source": "sensor-1", "title": ""}\n'
        b"not json at all\n"
        b'{"source": "sensor-1", "title": "Port scan", "classification": '
        b'{"taxonomy": "information-gathering", "type": "scanner"}}\n'
    )
    report = RawReport(stream=io.BytesIO(body), source="api", filename="batch.ndjson",
                       format="alerts")
    result = built.pipeline.ingest(report)
    assert (result.accepted, result.rejected) == (2, 2)
    assert sorted(e.line for e in result.errors) == [2, 3]
    assert {r["title"] for r in built.alerts.list()} == {"SSH brute force", "Port scan"}


def test_a_failing_batch_commits_nothing_of_itself(built: Services, shared_data: Path) -> None:
    calls = {"n": 0}

    class FailSecondBatch:
        name = "fail-second-batch"

        def enrich(self, batch: list) -> None:
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("crash while enriching the second batch")

    built.pipeline.enrichers = [FailSecondBatch()]
    with pytest.raises(RuntimeError):
        _ingest_file(built, shared_data / MUNTAHA)
    with built.store.read() as conn:
        stored = conn.execute(select(func.sum(alerts.c.count))).scalar()
    assert stored == 200, "exactly the first committed batch of 200 records is stored"


def test_captured_download_is_yara_scanned_on_the_live_path(built: Services,
                                                            shared_data: Path) -> None:
    capture = shared_data / "suricata/suricata-verify/output-eve-fileinfo/input.pcap"
    result = _ingest_file(built, capture)
    assert (result.accepted, result.rejected) == (3, 0)
    row = _row(built, "HTTP GET http://www.eicar.org/download/eicar.com")
    assert row.hit_count == 1
    hits = built.alerts.get(row.id)["alert"]["hits"]
    assert [(h["kind"], h["rule"], h["namespace"]) for h in hits] == [
        ("yara", "PUKARA_EICAR_Test_File", "national/pukara/eicar.yar")
    ]


def test_shadowserver_rows_are_routed_by_the_constituency(built: Services,
                                                          shared_data: Path) -> None:
    from pukara.core.schema import Entity

    built.identity.add_entity(Entity(id="ntt-demo", name="Owner of AS4713 (test)",
                                     sector="telecom", asns=[4713]))
    result = _ingest_file(built, shared_data / "shadowserver/scan_ftp.csv")
    assert (result.accepted, result.rejected) == (2, 0)
    with built.store.read() as conn:
        rows = conn.execute(select(alerts.c.entity_id, alerts.c.doc)).all()
    owners = {("61.126.3.70" in doc, entity) for entity, doc in rows}
    assert owners == {(True, "ntt-demo"), (False, None)}, "unmatched rows kept, unassigned"
