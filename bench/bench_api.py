"""Benchmark: the entity HTTP API on a real ``pukara serve`` over loopback.

SYNTHETIC (constructed) load: distinct alerts in NDJSON batches of 500 through
``POST /api/v1/alerts`` (one Idempotency-Key per batch), for a fixed duration, measuring
accepted alerts per second end to end (HTTP, parse, dedup-fingerprint, store commit with
``synchronous=FULL``); then single-incident latency: sequential ``POST /api/v1/incidents``
(p50, p99, max). The server runs in a child process with a fresh PUKARA_HOME; one client.

Usage: ``.venv/bin/python bench/bench_api.py [alert_seconds] [incidents]`` (defaults 20, 500).
Prints one JSON object.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
from pydantic import SecretStr

from cases.services.identity import Identity
from cases.store import open_store
from pukara.core.config import load_settings
from pukara.core.schema import Entity

PEPPER = "bench-pepper"
BATCH = 500


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _seed(home: Path) -> str:
    settings = load_settings(home=home, token_pepper=SecretStr(PEPPER))
    store = open_store(settings)
    identity = Identity(store, pepper=PEPPER)
    identity.add_entity(Entity(id="bench-entity", name="Bench", sector="gobierno"))
    token = identity.issue_entity_token("bench-entity")
    store.close()
    return token


def _start(home: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PUKARA_HOME": str(home), "PUKARA_TOKEN_PEPPER": PEPPER,
           "PUKARA_API__RATE_PER_MINUTE": "100000000", "PUKARA_API__RATE_BURST": "1000000"}
    pukara = Path(sys.executable).with_name("pukara")
    with log.open("ab") as out:
        process = subprocess.Popen([str(pukara), "serve", "--host", "127.0.0.1", "--port",
                                    str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("server did not start")


def _batch(number: int) -> bytes:
    start = number * BATCH
    return b"\n".join(orjson.dumps({
        "source": "bench-sensor", "title": f"Alerta {i}", "signature_id": str(i),
        "observed_at": "2026-11-01T12:00:00Z",
        "observables": [{"type": "ipv4", "value": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"}],
    }) for i in range(start, start + BATCH)) + b"\n"


def _alerts(http: httpx.Client, token: str, seconds: float) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    accepted = batches = 0
    busy = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        body = _batch(batches)
        started = time.perf_counter()
        response = http.post("/api/v1/alerts", content=body,
                             headers={**headers, "Idempotency-Key": f"b{batches}"})
        busy += time.perf_counter() - started
        response.raise_for_status()
        accepted += response.json()["accepted"]
        batches += 1
    return {"batches": batches, "accepted": accepted, "seconds": round(busy, 3),
            "alerts_per_second": round(accepted / busy, 1)}


def _incidents(http: httpx.Client, token: str, count: int) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {token}"}
    latencies = []
    for number in range(count):
        body = {"title": f"Incidente {number}", "classification": "malicious-code/ransomware",
                "detected_at": "2026-11-20T08:15:00Z", "description": "bench",
                "severity": "high", "tlp": "amber",
                "observables": [{"type": "ipv4", "value": "203.0.113.45"}]}
        started = time.perf_counter()
        response = http.post("/api/v1/incidents", json=body,
                             headers={**headers, "Idempotency-Key": f"i{number}"})
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 201, response.text
    latencies.sort()
    return {"count": count, "p50_ms": round(statistics.median(latencies), 2),
            "p99_ms": round(latencies[int(0.99 * (count - 1))], 2),
            "max_ms": round(latencies[-1], 2)}


def main() -> None:
    """Run both measurements and print one JSON object."""
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        token = _seed(home)
        port = _free_port()
        process = _start(home, port, Path(tmp) / "server.log")
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                alerts = _alerts(http, token, seconds)
                incidents = _incidents(http, token, count)
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(orjson.dumps({"benchmark": "api", "transport": "uvicorn h11 over loopback",
                        "batch_size": BATCH, "alerts": alerts, "incidents": incidents,
                        "cpu_count": os.cpu_count()}).decode())


if __name__ == "__main__":
    main()
