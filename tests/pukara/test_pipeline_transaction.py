"""The live pipeline inside one write transaction, with every enricher (real SQLite store).

The alerts, their indicator hits, the correlation sightings and the campaign (row and campaign
alert) commit together or not at all — ``POST /api/v1/alerts`` runs the full pipeline inside
its own write transaction (BEGIN IMMEDIATE on SQLite), so no enricher may write on a
connection of its own. The EVE lines are CONSTRUCTED (documentation addresses).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from cases.store.tables import alerts
from enrichment.intel.store import IntelStore
from enrichment.intel.tables import campaigns, sightings
from pukara.core.config import load_settings
from pukara.core.observables import ObservableType as T
from pukara.core.schema import Entity, Indicator, RawReport
from pukara.wiring import Services, build_services

C2 = "203.0.113.66"
KEY = f"ipv4:{C2}"
ENTITIES = ("minsa", "onpe", "sunat")


def _eve(entity_number: int, hour: int) -> bytes:
    """One constructed Suricata alert from a host of the entity to the C2 address."""
    return orjson.dumps({
        "timestamp": f"2026-11-20T0{hour}:00:00.000000+0000", "event_type": "alert",
        "src_ip": f"10.{entity_number}.0.5", "src_port": 49152, "dest_ip": C2,
        "dest_port": 443, "proto": "TCP",
        "alert": {"action": "allowed", "gid": 1, "signature_id": 2_030_001, "rev": 1,
                  "signature": "ET MALWARE constructed beacon", "category": "A Network Trojan "
                  "was detected", "severity": 1},
    }) + b"\n"


def _indicator() -> Indicator:
    return Indicator(type=T.IPV4, value=C2, source="constructed-feed", event_uuid="ev-1",
                     threat_level=1)


def _counts(services_store: sa.Engine) -> tuple[int, int, int, int, int]:
    """(entity alerts, their rows with hits, campaign alerts, sighting entities of C2,
    campaign rows)."""
    with services_store.connect() as conn:
        entity_alerts, with_hits = conn.execute(sa.select(
            sa.func.count(), sa.func.count().filter(alerts.c.hit_count > 0)
        ).where(alerts.c.source != "correlation")).one()
        campaign_alerts = conn.execute(sa.select(sa.func.count()).where(
            alerts.c.source == "correlation")).scalar_one()
        seen_by = conn.execute(sa.select(sa.func.count(sightings.c.entity_id.distinct())).where(
            sightings.c.observable_key == KEY)).scalar_one()
        campaign_rows = conn.execute(sa.select(sa.func.count()).select_from(campaigns)
                                     ).scalar_one()
    return entity_alerts, with_hits, campaign_alerts, seen_by, campaign_rows


@pytest.fixture
def built(pukara_home: Path) -> Iterator[Services]:
    services = build_services(load_settings())
    services.identity.upsert_entities(
        Entity(id=name, name=name.upper(), sector="gobierno", cidrs=[f"10.{n}.0.0/16"])
        for n, name in enumerate(ENTITIES, start=1))
    IntelStore(services.store.engine).upsert([_indicator()])
    yield services
    services.close()


def _report(number: int) -> RawReport:
    return RawReport(stream=io.BytesIO(_eve(number, number)), source="api",
                     entity_id=ENTITIES[number - 1], format="suricata")


def _ingest_all(services: Services, conn: sa.Connection) -> None:
    for number in (1, 2, 3):
        result = services.pipeline.ingest_in(_report(number), conn)
        assert (result.accepted, result.rejected) == (1, 0)


def test_hits_sightings_and_campaign_commit_with_the_alerts(built: Services) -> None:
    with built.store.write() as conn:
        _ingest_all(built, conn)
    assert _counts(built.store.engine) == (3, 3, 1, 3, 1)
    with built.store.read() as conn:
        docs = conn.execute(sa.select(alerts.c.entity_id, alerts.c.doc).where(
            alerts.c.source != "correlation").order_by(alerts.c.entity_id)).all()
    third = orjson.loads(next(doc for entity, doc in docs if entity == "sunat"))
    kinds = sorted((h["kind"], h["observable"]) for h in third["hits"])
    assert kinds == [("correlation", KEY), ("indicator", KEY)]


def test_a_failure_after_enrichment_leaves_neither_alerts_nor_sightings(
        built: Services) -> None:
    with pytest.raises(RuntimeError, match="injected"), built.store.write() as conn:
        _ingest_all(built, conn)
        raise RuntimeError("injected after enrichment, before commit")
    assert _counts(built.store.engine) == (0, 0, 0, 0, 0)
    # memory went back too: the same alerts again create the campaign (alert and row)
    with built.store.write() as conn:
        _ingest_all(built, conn)
    assert _counts(built.store.engine) == (3, 3, 1, 3, 1)


def test_a_failing_write_undoes_the_staged_batch(built: Services,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import pukara.pipeline as pipeline_module

    real = pipeline_module.alert_store.write_batch
    real_rows = pipeline_module.alert_store.write_sqlite_rows
    with built.store.write() as conn:
        for number in (1, 2):
            built.pipeline.ingest_in(_report(number), conn)

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("disk full (injected)")

    # both writers: the Alert path's and the bulk path's (EVE reports take the latter)
    monkeypatch.setattr(pipeline_module.alert_store, "write_batch", broken)
    monkeypatch.setattr(pipeline_module.alert_store, "write_sqlite_rows", broken)
    with pytest.raises(RuntimeError, match="injected"):
        built.pipeline.ingest(_report(3))
    assert _counts(built.store.engine) == (2, 2, 0, 2, 0)
    monkeypatch.setattr(pipeline_module.alert_store, "write_batch", real)
    monkeypatch.setattr(pipeline_module.alert_store, "write_sqlite_rows", real_rows)
    built.pipeline.ingest(_report(3))
    assert _counts(built.store.engine) == (3, 3, 1, 3, 1)
