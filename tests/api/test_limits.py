"""D1–D6, E3–E5, C1–C3: payload limits, hostile JSON, uploads and rate limits.

Bodies here are constructed (labelled hostile inputs), not samples. D1–D3 run against a real
``pukara serve`` over raw sockets, since only a real server shows when the body is read.
"""

from __future__ import annotations

import gzip
import json
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlalchemy import select as sql_select

from cases.api.limits import RequestLimits
from cases.store import open_store
from cases.store.tables import evidence, incidents
from pukara.core.config import Settings
from tests.api.conftest import (
    PEPPER,
    ApiEnv,
    Principals,
    incident_body,
    make_settings,
    seed_principals,
)
from tests.api.live import LiveServer

bearer = Principals.bearer
JSON = {"Content-Type": "application/json"}
LIVE_CAP = 1024 * 1024
HEAD_TIMEOUT = 1.0


def _count(env: ApiEnv, table: Any) -> int:
    with env.store.read() as conn:
        return int(conn.execute(sql_select(func.count()).select_from(table)).scalar_one())


def _post_raw(client: TestClient, token: str, body: bytes, **headers: str) -> Any:
    return client.post("/api/v1/incidents", content=body,
                       headers={**bearer(token), **JSON, **headers})


# -- D5: hostile JSON (in process) ------------------------------------------------------

HOSTILE_JSON = {
    "depth 100k": b"[" * 100_000 + b"]" * 100_000,
    "depth 100 (under orjson's limit)": b'{"title": ' + b"[" * 100 + b"]" * 100 + b"}",
    "10^6-digit integer": b'{"title": 1' + b"0" * 1_000_000 + b"}",
    "int past 64 bits": b'{"title": "x", "impact": {"people_affected": 18446744073709551616}}',
    "NaN": b'{"title": NaN}',
    "Infinity": b'{"title": "x", "impact": {"people_affected": Infinity}}',
    "duplicate keys": b'{"title": "a", "title": "b"}',
    "invalid UTF-8": b'{"title": "\xff\xfe"}',
    "lone surrogate": b'{"title": "\\ud800"}',
    "trailing garbage": b'{"title": "x"} {"title": "y"}',
}


@pytest.mark.parametrize("name", list(HOSTILE_JSON))
def test_hostile_json_is_a_located_400(client: TestClient, api_env: ApiEnv, name: str) -> None:
    response = _post_raw(client, api_env.tokens.a, HOSTILE_JSON[name])
    assert response.status_code == 400, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["status"] == 400 and problem["errors"][0]["field"] == "body"
    assert "Traceback" not in response.text
    assert _count(api_env, incidents) == 0


def test_long_fields_are_refused_with_their_name(client: TestClient, api_env: ApiEnv) -> None:
    response = client.post("/api/v1/incidents", json=incident_body("t" * 513),
                           headers=bearer(api_env.tokens.a))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "title"
    big = client.post("/api/v1/incidents", json=incident_body("t" * (10 * 1024 * 1024)),
                      headers=bearer(api_env.tokens.a))
    assert big.status_code == 413
    assert big.headers["content-type"] == "application/problem+json"
    assert _count(api_env, incidents) == 0


def test_chunked_body_past_the_cap_is_413_in_process(client: TestClient,
                                                     api_env: ApiEnv) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(12):
            yield b" " * (1024 * 1024)

    response = client.post("/api/v1/alerts", content=chunks(),
                           headers={**bearer(api_env.tokens.a),
                                    "Content-Type": "application/x-ndjson"})
    assert response.status_code == 413
    assert response.json()["title"] == "Payload too large"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "gzip, identity"])
def test_encoded_bodies_are_refused_undecoded(client: TestClient, api_env: ApiEnv,
                                              encoding: str) -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 100_000
    response = _post_raw(client, api_env.tokens.a, bomb, **{"Content-Encoding": encoding})
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"


# -- D1–D3: a real server and raw sockets ------------------------------------------------

@dataclass
class Live:
    """One real server for the socket tests of this module, and its principals."""

    server: LiveServer
    tokens: Principals
    settings: Settings

    def incident_count(self) -> int:
        store = open_store(self.settings)
        try:
            with store.read() as conn:
                return int(conn.execute(sql_select(func.count()).select_from(incidents))
                           .scalar_one())
        finally:
            store.engine.dispose()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    home = tmp_path_factory.mktemp("live") / "home"
    settings = make_settings(home)
    store = open_store(settings)
    tokens = seed_principals(store)
    store.close()
    server = LiveServer(home, pepper=PEPPER, log=home.parent / "server.log",
                        extra_env={"PUKARA_API__MAX_BODY_BYTES": str(LIVE_CAP)},
                        args=("--header-timeout", str(HEAD_TIMEOUT)))
    with server:
        yield Live(server, tokens, settings)


def _head(token: str, length: str | None = None, chunked: bool = False) -> bytes:
    lines = ["POST /api/v1/incidents HTTP/1.1", "Host: 127.0.0.1",
             f"Authorization: Bearer {token}", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_status(sock: socket.socket, timeout: float = 10.0) -> int | None:
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (TimeoutError, ConnectionResetError):
        return None
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1") else None


def test_declared_10gb_is_413_before_any_body(live: Live) -> None:
    with socket.create_connection(("127.0.0.1", live.server.port)) as sock:
        sock.sendall(_head(live.tokens.a, length=str(10 * 1024**3)))
        started = time.monotonic()
        assert _read_status(sock) == 413
        assert time.monotonic() - started < 5


def test_chunked_body_is_cut_when_it_crosses_the_cap(live: Live) -> None:
    piece = 64 * 1024
    sent = 0
    status = None
    with socket.create_connection(("127.0.0.1", live.server.port)) as sock:
        sock.sendall(_head(live.tokens.a, chunked=True))
        while sent < 8 * LIVE_CAP:
            readable, _, _ = select.select([sock], [], [], 0.02)
            if readable:
                status = _read_status(sock)
                break
            try:
                sock.sendall(f"{piece:x}\r\n".encode() + b" " * piece + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                status = _read_status(sock)
                break
            sent += piece
    assert status == 413
    assert LIVE_CAP < sent <= LIVE_CAP + 8 * piece


def test_length_mismatch_stores_nothing(live: Live) -> None:
    body = json.dumps(incident_body()).encode()
    with socket.create_connection(("127.0.0.1", live.server.port)) as sock:
        sock.sendall(_head(live.tokens.a, length=str(len(body) + 100)) + body)
        sock.shutdown(socket.SHUT_WR)
        assert _read_status(sock) in (None, 400)
    with socket.create_connection(("127.0.0.1", live.server.port)) as sock:
        sock.sendall(_head(live.tokens.a, length=str(len(body) // 2)) + body)
        assert _read_status(sock) == 400
    assert live.incident_count() == 0
    with socket.create_connection(("127.0.0.1", live.server.port)) as sock:
        sock.sendall(_head(live.tokens.a, length=str(len(body))) + body)
        assert _read_status(sock) == 201
    assert live.incident_count() == 1


# -- E3–E5, D4: evidence uploads ---------------------------------------------------------

def _incident(client: TestClient, token: str) -> str:
    response = client.post("/api/v1/incidents", json=incident_body(), headers=bearer(token))
    return str(response.json()["id"])


@pytest.mark.parametrize("filename, stored_name", [
    ("../../etc/cron.d/x", "x"), ("..\\..\\windows\\win.ini", "win.ini"), ("CON", "_CON"),
    ("report.html", "report.html"), ("a" * 300 + ".txt", "a" * 251 + ".txt"),
], ids=["traversal", "windows-traversal", "device-name", "html", "300-bytes"])
def test_upload_names_never_become_paths(client: TestClient, api_env: ApiEnv, filename: str,
                                         stored_name: str) -> None:
    incident_id = _incident(client, api_env.tokens.a)
    content = b"<html><script>alert(1)</script></html>"
    response = client.post(f"/api/v1/incidents/{incident_id}/evidence",
                           files={"file": (filename, content, "text/plain")},
                           data={"path": "../../owned", "stored_path": "/tmp/owned"},
                           headers=bearer(api_env.tokens.a))
    assert response.status_code == 201, response.text
    document = response.json()
    sha = document["sha256"]
    assert document["filename"] == stored_name
    blob = api_env.settings.evidence_dir / sha[:2] / sha
    assert blob.read_bytes() == content
    home = api_env.settings.home
    written = {p.relative_to(home).parts[0] for p in home.rglob("*") if p.is_file()}
    assert written <= {"evidence", "pukara.db", "pukara.db-wal", "pukara.db-shm", ".store-open"}
    assert not (home.parent / "owned").exists()


def test_evidence_declared_type_is_metadata_only(client: TestClient, api_env: ApiEnv) -> None:
    incident_id = _incident(client, api_env.tokens.a)
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
    response = client.post(f"/api/v1/incidents/{incident_id}/evidence",
                           files={"file": ("logo.svg", svg, "text/plain")},
                           headers=bearer(api_env.tokens.a))
    assert response.status_code == 201
    with api_env.store.read() as conn:
        row = conn.execute(sql_select(evidence)).one()
    assert (row.declared_type, row.filename, row.size) == ("text/plain", "logo.svg", len(svg))
    paths = set(client.get("/openapi.json", headers=bearer(api_env.tokens.a)
                                   ).json()["paths"])
    assert not [p for p in paths if p.endswith("/evidence/{evidence_id}")]  # never served here


def test_evidence_over_its_cap_is_413_and_leaves_nothing(pukara_home: Path) -> None:
    settings = make_settings(pukara_home, max_evidence_bytes=64 * 1024)
    store = open_store(settings)
    tokens = seed_principals(store)
    from pukara.server import build_app

    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        incident_id = _incident(client, tokens.a)
        response = client.post(f"/api/v1/incidents/{incident_id}/evidence",
                               files={"file": ("big.bin", b"\1" * (200 * 1024))},
                               headers=bearer(tokens.a))
        assert response.status_code == 413
        fits = client.post(f"/api/v1/incidents/{incident_id}/evidence",
                           files={"file": ("ok.bin", b"\1" * (60 * 1024))},
                           headers=bearer(tokens.a))
        assert fits.status_code == 201
    with store.read() as conn:
        assert conn.execute(sql_select(func.count()).select_from(evidence)).scalar_one() == 1
    leftovers = [p for p in settings.evidence_dir.rglob("*") if p.is_file()]
    assert [p.name for p in leftovers] == [fits.json()["sha256"]]
    store.close()


@pytest.mark.parametrize("parts", [
    {"files": [("file", (f"f{i}", b"x")) for i in range(10)]},
    {"files": {"file": ("f", b"x")}, "data": {f"k{i}": "v" for i in range(3000)}},
    {"files": {"file": ("f", b"x")}, "data": {"note": "n" * (200 * 1024)}},
])
def test_multipart_abuse_is_400(client: TestClient, api_env: ApiEnv, parts: dict[str, Any]
                                ) -> None:
    incident_id = _incident(client, api_env.tokens.a)
    response = client.post(f"/api/v1/incidents/{incident_id}/evidence",
                           headers=bearer(api_env.tokens.a), **parts)
    assert response.status_code == 400
    assert _count(api_env, evidence) == 0


# -- C1–C3: rate limits ------------------------------------------------------------------

def _limited_client(home: Path, peer: tuple[str, int], **api: Any) -> tuple[TestClient,
                                                                            Principals]:
    from pukara.server import build_app

    settings = make_settings(home, **api)
    tokens = seed_principals(open_store(settings))
    return TestClient(build_app(settings), client=peer), tokens


def test_per_token_limit_is_429_with_retry_after(pukara_home: Path) -> None:
    client, tokens = _limited_client(pukara_home, ("198.51.100.7", 4000),
                                     rate_per_minute=60, rate_burst=3)
    with client:
        codes = [client.get("/api/v1/incidents", headers=bearer(tokens.a)).status_code
                 for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = client.get("/api/v1/incidents", headers=bearer(tokens.a))
        assert limited.headers["retry-after"] == "1"
        assert limited.json()["status"] == 429
        assert client.get("/api/v1/incidents", headers=bearer(tokens.b)).status_code == 200
        assert client.get("/api/v1/incidents", headers=bearer(tokens.a2)).status_code == 200


def test_failed_auth_throttles_the_peer_not_the_entity(pukara_home: Path) -> None:
    client, tokens = _limited_client(pukara_home, ("198.51.100.7", 4000),
                                     failed_auth_per_minute=5,
                                     trusted_proxies=["10.0.0.0/8"])
    with client:
        for _ in range(5):
            assert client.get("/api/v1/incidents", headers=bearer("pk_" + "g" * 43)
                              ).status_code == 401
        throttled = client.get("/api/v1/incidents", headers=bearer(tokens.a))
        assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
        spoofed = client.get("/api/v1/incidents", headers={**bearer(tokens.a),
                                                           "X-Forwarded-For": "192.0.2.1"})
        assert spoofed.status_code == 429
    other = TestClient(client.app, client=("198.51.100.8", 4000))
    assert other.get("/api/v1/incidents", headers=bearer(tokens.a)).status_code == 200
    proxy = TestClient(client.app, client=("10.1.2.3", 4000))
    for _ in range(5):
        proxy.get("/api/v1/incidents", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxy.get("/api/v1/incidents", headers={
        **bearer(tokens.a), "X-Forwarded-For": "203.0.113.9"}).status_code == 429
    assert proxy.get("/api/v1/incidents", headers={
        **bearer(tokens.a), "X-Forwarded-For": "203.0.113.10"}).status_code == 200


def test_the_server_does_not_take_the_client_address_from_headers(live: Live) -> None:
    response = httpx.get(f"{live.server.url}/healthz", headers={
        "X-Forwarded-For": "203.0.113.77", "Forwarded": "for=203.0.113.78"})
    assert response.status_code == 200
    time.sleep(0.2)
    log = live.server.log.read_text()
    assert '"GET /healthz HTTP/1.1" 200' in log
    assert "203.0.113.77" not in log and "203.0.113.78" not in log


@pytest.mark.parametrize("content_type, body, status", [
    ("multipart/form-data", b"--x\r\n", 400),
    ("multipart/form-data; boundary=" + "a" * 70_000, b"--x", 400),
    ("multipart/form-data; boundary=xyz", b"A" * 5_000_000 + b"\r\n--xyz--\r\n", 400),
    ("application/json", b"{}", 415),
    ("text/plain", b"file=x", 415),
], ids=["no-boundary", "huge-boundary", "huge-preamble", "json", "text"])
def test_pathological_multipart_is_refused_fast(client: TestClient, api_env: ApiEnv,
                                               content_type: str, body: bytes,
                                               status: int) -> None:
    incident_id = _incident(client, api_env.tokens.a)
    response = client.post(f"/api/v1/incidents/{incident_id}/evidence", content=body,
                           headers={**bearer(api_env.tokens.a), "Content-Type": content_type})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert _count(api_env, evidence) == 0


def _closed_after(sock: socket.socket, trickle: bytes, pause: float) -> float:
    """Send ``trickle`` a byte at a time every ``pause`` s; seconds until the server closes."""
    started = time.monotonic()
    sock.settimeout(pause)
    for byte in trickle:
        try:
            sock.sendall(bytes([byte]))
            if sock.recv(4096) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - started
    return float("inf")


def test_a_slow_request_head_is_cut_off(live: Live) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
    with socket.create_connection(("127.0.0.1", live.server.port)) as sock:
        assert _closed_after(sock, head, 0.2) < HEAD_TIMEOUT + 2
    with socket.create_connection(("127.0.0.1", live.server.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _read_status(sock) == 200
        sock.recv(4096)
        assert _closed_after(sock, head, 0.2) < HEAD_TIMEOUT + 2


def test_a_trickling_body_is_cut_with_408() -> None:
    """The middleware alone, on a receive that trickles one byte every 50 ms (the edge)."""
    seen: list[bytes] = []

    async def reader(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            seen.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def scenario(trickle: float) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        chunks = iter([b"x"] * 40)

        async def receive() -> dict[str, Any]:
            await anyio.sleep(trickle)
            chunk = next(chunks, None)
            return {"type": "http.request", "body": chunk or b"", "more_body": chunk is not None}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        limits = RequestLimits(reader, max_body=1000, body_grace=0.3, min_body_rate=100)
        scope = {"type": "http", "path": "/api/v1/incidents", "headers": []}
        await limits(scope, receive, send)
        return sent

    slow = anyio.run(scenario, 0.05)
    assert slow[0]["status"] == 408
    assert 3 <= len(seen) <= 8
    seen.clear()
    fast = anyio.run(scenario, 0.0)
    assert fast[0]["status"] == 201
    assert len(seen) == 41
