"""POST /api/v1/alerts: the real pipeline behind the route, partial acceptance with located
errors, every registered format facing hostile bodies, and format/media-type checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cases.store import open_store
from cases.store.tables import alerts
from pukara.core import plugins
from pukara.core.schema import IngestResult, RawReport
from pukara.pipeline import Pipeline
from tests.api.conftest import ENTITY_A, ApiEnv, Principals, make_settings, seed_principals

bearer = Principals.bearer
SURICATA_SAMPLE = "suricata/mkhairin-eve.json"
OCTETS = {"Content-Type": "application/octet-stream"}
HOSTILE = {  # constructed
    "empty": b"",
    "random": os.urandom(4096),
    "json-junk": b'[1, {"a": null}, "x"]',
    "ndjson-junk": b'{"a": 1}\n[2]\nnot json\n',
    "csv-junk": b"a,b\n1,2,3\n\x00,\n",
    "deep": b"[" * 5000 + b"]" * 5000,
    "mail-ish": b"From: x\r\nSubject: y\r\n\r\nbody",
    "pcap-header": b"\xd4\xc3\xb2\xa1" + b"\x00" * 20,
}
#: known parser bugs found by this test (reported to the parser's author)
KNOWN_PARSER_BUGS: dict[tuple[str, str], str] = {}


def _cases() -> list[object]:
    cases: list[object] = []
    for name in plugins.names(plugins.PARSERS):
        for label in HOSTILE:
            marks = []
            if (name, label) in KNOWN_PARSER_BUGS:
                marks.append(pytest.mark.xfail(strict=True,
                                               reason=KNOWN_PARSER_BUGS[(name, label)]))
            cases.append(pytest.param(name, label, id=f"{name}-{label}", marks=marks))
    return cases


def test_a_real_suricata_log_is_ingested_as_the_pipeline_does(
        client: TestClient, api_env: ApiEnv, shared_data: Path, tmp_path: Path) -> None:
    data = (shared_data / SURICATA_SAMPLE).read_bytes()
    response = client.post("/api/v1/alerts?format=suricata", content=data,
                           headers={**bearer(api_env.tokens.a), **OCTETS})
    assert response.status_code == 200
    assert response.json() == {"accepted": 14, "duplicates": 15, "rejected": 0, "skipped": 9,
                               "errors": []}
    with api_env.store.read() as conn:
        rows, total, entities = conn.execute(select(
            func.count(), func.sum(alerts.c.count), func.count(alerts.c.entity_id.distinct())
        )).one()
        owner = conn.execute(select(alerts.c.entity_id).limit(1)).scalar_one()
    assert (rows, total, entities, owner) == (14, 29, 1, ENTITY_A)
    direct_store = open_store(make_settings(tmp_path / "direct"))
    seed_principals(direct_store)
    with (shared_data / SURICATA_SAMPLE).open("rb") as stream:
        direct = Pipeline(store=direct_store, settings=make_settings(tmp_path / "direct")).ingest(
            RawReport(stream=stream, source="file", entity_id=ENTITY_A, format="suricata"))
    direct_store.close()
    assert (direct.accepted, direct.duplicates, direct.rejected, direct.skipped) == (14, 15, 0, 9)


def test_format_auto_detects(client: TestClient, api_env: ApiEnv, shared_data: Path) -> None:
    data = (shared_data / SURICATA_SAMPLE).read_bytes()
    response = client.post("/api/v1/alerts?format=auto", content=data,
                           headers={**bearer(api_env.tokens.a), **OCTETS})
    assert response.json()["accepted"] == 14


def test_good_records_are_kept_and_bad_ones_located(client: TestClient,
                                                    api_env: ApiEnv) -> None:
    body = (b'{"source": "ids", "title": "uno", "signature_id": "1"}\n'
            b'{"source": "ids", "title": "", "signature_id": "2"}\n'
            b'not json\n'
            b'{"source": "ids", "title": "tres", "signature_id": "3"}\n')
    response = client.post("/api/v1/alerts", content=body,
                           headers={**bearer(api_env.tokens.a),
                                    "Content-Type": "application/x-ndjson"})
    result = response.json()
    assert (result["accepted"], result["duplicates"], result["rejected"]) == (2, 0, 2)
    assert [(e["source"], e["line"]) for e in result["errors"]] == [("api", 2), ("api", 3)]
    assert "title" in result["errors"][0]["error"]
    with api_env.store.read() as conn:
        titles = sorted(conn.execute(select(alerts.c.title)).scalars())
    assert titles == ["tres", "uno"]


def test_unknown_format_and_media_type(client: TestClient, api_env: ApiEnv) -> None:
    unknown = client.post("/api/v1/alerts?format=../../etc", content=b"",
                          headers={**bearer(api_env.tokens.a), **OCTETS})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "format"
    assert "suricata" in unknown.json()["errors"][0]["message"]
    for media in ("text/plain", "multipart/form-data; boundary=x", "text/html", ""):
        response = client.post("/api/v1/alerts", content=b"{}",
                               headers={**bearer(api_env.tokens.a), "Content-Type": media})
        assert response.status_code == 415, media


@pytest.fixture(scope="module")
def hostile_client(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestClient, str]:
    home = tmp_path_factory.mktemp("hostile") / "home"
    settings = make_settings(home)
    token = seed_principals(open_store(settings)).a
    from pukara.server import build_app

    return TestClient(build_app(settings), raise_server_exceptions=False), token


@pytest.mark.parametrize("name, label", _cases())
def test_no_format_answers_hostile_input_with_a_5xx(hostile_client: tuple[TestClient, str],
                                                     name: str, label: str) -> None:
    client, token = hostile_client
    response = client.post(f"/api/v1/alerts?format={name}", content=HOSTILE[label],
                           headers={**bearer(token), **OCTETS})
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        result = response.json()
        assert set(result) == set(IngestResult.model_fields)
        assert {"accepted", "duplicates", "rejected", "errors"} <= set(result)
