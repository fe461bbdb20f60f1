"""D12: property-based fuzzing of POST /api/v1/incidents (Hypothesis).

Random JSON, random bytes and mutations of a valid body always get a 4xx or a 201, never a
5xx; a generated valid body round-trips (GET returns the same values) and the stored raw
original is the request body, byte for byte. Inputs are constructed by Hypothesis.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from cases.store.tables import incidents
from tests.api.conftest import ApiEnv, Principals, incident_body

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
CLASSIFICATIONS = ["malicious-code/ransomware", "intrusions/system-compromise",
                   "availability/ddos", "fraud/phishing", "information-gathering/scanner",
                   "abusive-content/spam", "vulnerable/vulnerable-system"]
SEVERITIES = ["info", "low", "medium", "high", "critical"]
TLPS = ["clear", "green", "amber", "amber+strict", "red"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False,
                                                                     allow_infinity=False)
    | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
text = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=300)
titles = text.map(str.strip).filter(lambda t: 0 < len(t) <= 512)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2026, 1, 1),
                       timezones=st.just(UTC))
observables = st.lists(st.one_of(
    st.ip_addresses(v=4, network="198.51.100.0/24").map(lambda ip: {"type": "ipv4",
                                                                     "value": str(ip)}),
    st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: {"type": "sha256",
                                                                        "value": h}),
), max_size=5, unique_by=lambda o: (o["type"], o["value"]))


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


valid_bodies = st.fixed_dictionaries({
    "title": titles, "classification": st.sampled_from(CLASSIFICATIONS),
    "detected_at": moments.map(_rfc3339), "description": text.map(str.strip),
    "severity": st.sampled_from(SEVERITIES), "tlp": st.sampled_from(TLPS),
    "observables": observables,
})


@pytest.fixture
def fuzz_client(client: TestClient, api_env: ApiEnv) -> Iterator[TestClient]:
    client.headers.update(Principals.bearer(api_env.tokens.a))
    yield client


def _post(client: TestClient, body: bytes) -> Any:
    return client.post("/api/v1/incidents", content=body,
                       headers={"Content-Type": "application/json"})


def _never_5xx(response: Any) -> None:
    assert response.status_code == 201 or 400 <= response.status_code < 500, response.text
    if response.status_code != 201:
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert problem["status"] == response.status_code
        assert problem["errors"], problem


@FUZZ
@given(value=json_values)
def test_random_json_is_never_a_5xx(fuzz_client: TestClient, value: Any) -> None:
    _never_5xx(_post(fuzz_client, json.dumps(value).encode()))


@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes_are_never_a_5xx(fuzz_client: TestClient, data: bytes) -> None:
    response = _post(fuzz_client, data)
    assert 400 <= response.status_code < 500


@FUZZ
@given(key=st.sampled_from(sorted(incident_body())), value=json_values,
       extra=st.text(min_size=1, max_size=20), mutation=st.sampled_from(["drop", "set", "add"]))
def test_mutated_bodies_are_never_a_5xx(fuzz_client: TestClient, key: str, value: Any,
                                         extra: str, mutation: str) -> None:
    body = incident_body()
    if mutation == "drop":
        body.pop(key)
    elif mutation == "set":
        body[key] = value
    else:
        body[extra] = value
    _never_5xx(_post(fuzz_client, json.dumps(body).encode()))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=valid_bodies, indent=st.sampled_from([None, 2]))
def test_valid_bodies_round_trip_and_keep_the_raw_original(
        fuzz_client: TestClient, api_env: ApiEnv, body: dict[str, Any], indent: int | None
) -> None:
    raw = json.dumps(body, indent=indent, ensure_ascii=indent is None).encode()
    created = _post(fuzz_client, raw)
    assert created.status_code == 201, created.text
    view = fuzz_client.get(f"/api/v1/incidents/{created.json()['id']}").json()
    for field in ("title", "classification", "severity", "tlp", "description"):
        assert view[field] == body[field], field
    assert datetime.fromisoformat(view["detected_at"]) == datetime.fromisoformat(
        body["detected_at"])
    assert view["observables"] == body["observables"]
    with api_env.store.read() as conn:
        stored = conn.execute(select(incidents.c.raw).where(
            incidents.c.id == view["id"])).scalar_one()
    assert stored.encode() == raw
