"""I1: kill -9 loses nothing and duplicates nothing.

A real ``pukara serve`` child receives 10,000 distinct alerts in 100 keyed batches
(``POST /api/v1/alerts``, one ``Idempotency-Key`` per batch) while the harness SIGKILLs it
at random moments and restarts it; the client retries every unacknowledged batch with the
same key. In the end there are exactly 10,000 alert rows, each with count 1, every
acknowledgement says the batch was accepted once, the database passes ``integrity_check``
and ``pukara audit verify`` passes. The alerts are constructed.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from cases.store import open_store
from tests.api.conftest import PEPPER, make_settings, seed_principals
from tests.api.live import PUKARA, LiveServer

BATCHES = 100
PER_BATCH = 100
KILLS = 3


def _batch(number: int) -> bytes:
    lines = []
    for i in range(number * PER_BATCH, (number + 1) * PER_BATCH):
        lines.append(orjson.dumps({
            "source": "crash-sensor", "title": f"Alerta sintética {i}", "signature_id": str(i),
            "observed_at": "2026-11-01T12:00:00Z", "severity": "low",
            "observables": [{"type": "ipv4", "value": f"10.0.{i // 256}.{i % 256}"}],
        }))
    return b"\n".join(lines) + b"\n"


class Client(threading.Thread):
    """Sends every batch until acknowledged, retrying with the same key."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.token = token
        self.acks: dict[int, dict[str, object]] = {}
        self.retries = 0

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=15) as http:
            for number in range(BATCHES):
                self.acks[number] = self._send(http, number, _batch(number))

    def _send(self, http: httpx.Client, number: int, body: bytes) -> dict[str, object]:
        headers = {"Authorization": f"Bearer {self.token}", "Idempotency-Key": f"batch-{number}",
                   "Content-Type": "application/x-ndjson"}
        while True:
            try:
                response = http.post("/api/v1/alerts", content=body, headers=headers)
            except httpx.TransportError:
                self.retries += 1
                time.sleep(0.05)
                continue
            if response.status_code == 200:
                return dict(response.json())
            assert response.status_code >= 500, response.text
            self.retries += 1
            time.sleep(0.05)


@pytest.mark.slow
def test_sigkill_during_keyed_batches_loses_and_doubles_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = open_store(make_settings(home))
    token = seed_principals(store).a
    store.close()
    seed = random.randrange(1 << 30)
    chaos = random.Random(seed)
    server = LiveServer(home, pepper=PEPPER, log=tmp_path / "server.log").start()
    client = Client(server.url, token)
    client.start()
    kills_in_flight = 0
    try:
        for _ in range(KILLS):
            time.sleep(chaos.uniform(0.2, 1.5))
            kills_in_flight += client.is_alive()
            server.kill()
            server.start()
        client.join(timeout=90)
        assert not client.is_alive(), "client did not finish"
    finally:
        server.stop()
    assert kills_in_flight >= 1, f"seed {seed}: no kill hit the client"
    assert client.retries >= kills_in_flight
    assert sorted(client.acks) == list(range(BATCHES))
    for number, ack in client.acks.items():
        assert ack == {"accepted": PER_BATCH, "duplicates": 0, "rejected": 0, "skipped": 0,
                       "errors": []}, (seed, number)
    database = sqlite3.connect(home / "pukara.db")
    try:
        assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows, total, biggest = database.execute(
            "SELECT count(*), sum(count), max(count) FROM alerts").fetchone()
        distinct = database.execute("SELECT count(DISTINCT signature) FROM (SELECT "
                                    "json_extract(doc, '$.signature_id') AS signature "
                                    "FROM alerts)").fetchone()[0]
        keys = database.execute("SELECT count(*) FROM idempotency_keys").fetchone()[0]
    finally:
        database.close()
    assert (rows, total, biggest, distinct) == (10_000, 10_000, 1, 10_000), seed
    assert keys == BATCHES
    verify = subprocess.run([str(PUKARA), "audit", "verify", "--json"], capture_output=True,
                            env={**server.env}, timeout=60, check=False)
    assert verify.returncode == 0, verify.stderr
    assert orjson.loads(verify.stdout)["ok"] is True


EVIDENCE_ITEMS = 40


def _evidence_bytes(number: int) -> bytes:
    return (f"evidencia {number}\n".encode() * 4000)[: 20_000 + number * 997]


class EvidenceClient(threading.Thread):
    """Reports incidents, each with one evidence file, retrying both steps with their keys."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.acked: dict[int, tuple[str, str]] = {}

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=15) as http:
            for number in range(EVIDENCE_ITEMS):
                incident = self._retry(lambda n=number: http.post(
                    "/api/v1/incidents", headers={**self.headers, "Idempotency-Key": f"i-{n}"},
                    json={"title": f"Incidente {n}", "classification": "malicious-code/ransomware",
                          "detected_at": "2026-11-01T08:00:00Z", "external_id": f"T-{n}"}))
                upload = self._retry(lambda n=number, i=incident["id"]: http.post(
                    f"/api/v1/incidents/{i}/evidence",
                    headers={**self.headers, "Idempotency-Key": f"e-{n}"},
                    files={"file": (f"muestra-{n}.bin", _evidence_bytes(n))}))
                self.acked[number] = (str(incident["id"]), str(upload["sha256"]))

    @staticmethod
    def _retry(send: object) -> dict[str, object]:
        while True:
            try:
                response = send()  # type: ignore[operator]
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            if response.status_code == 201:
                return dict(response.json())
            assert response.status_code >= 500, response.text
            time.sleep(0.05)


@pytest.mark.slow
def test_sigkill_during_uploads_leaves_every_file_whole_and_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = open_store(make_settings(home))
    token = seed_principals(store).a
    store.close()
    chaos = random.Random()
    server = LiveServer(home, pepper=PEPPER, log=tmp_path / "server.log").start()
    client = EvidenceClient(server.url, token)
    client.start()
    try:
        for _ in range(KILLS):
            time.sleep(chaos.uniform(0.2, 1.0))
            server.kill()
            server.start()
        client.join(timeout=90)
        assert not client.is_alive(), "client did not finish"
    finally:
        server.stop()
    server.start().stop()  # one more boot: interrupted uploads are swept
    assert sorted(client.acked) == list(range(EVIDENCE_ITEMS))
    database = sqlite3.connect(home / "pukara.db")
    try:
        incidents_seen = database.execute(
            "SELECT count(*), count(DISTINCT external_id) FROM incidents").fetchone()
        rows = database.execute("SELECT incident_id, sha256, size FROM evidence").fetchall()
    finally:
        database.close()
    assert incidents_seen == (EVIDENCE_ITEMS, EVIDENCE_ITEMS)
    assert sorted((i, s) for i, s, _ in rows) == sorted(client.acked.values())
    evidence_dir = home / "evidence"
    blobs = {p.name: p for p in evidence_dir.glob("[0-9a-f][0-9a-f]/*")}
    assert set(blobs) == {sha for _, sha in client.acked.values()}
    for number, (_, sha) in client.acked.items():
        content = _evidence_bytes(number)
        assert hashlib.sha256(blobs[sha].read_bytes()).hexdigest() == sha
        assert blobs[sha].read_bytes() == content
    assert not list((evidence_dir / "tmp").glob("*"))
