"""SECURITY I6: the disk fills up during an upload — nothing acknowledged, nothing partial,
and uploads work again once space is freed. The evidence store sits on a real, tiny tmpfs
(mounted by the test; needs root, which this project's machines and CI have)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cases.store.tables import evidence
from tests.api.conftest import ApiEnv, Principals, incident_body


@pytest.fixture
def tiny_evidence_disk(pukara_home: Path) -> Iterator[Path]:
    target = pukara_home / "evidence"
    target.mkdir(mode=0o700, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs",
                              str(target)], capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_disk_full_upload_is_refused_whole_and_recovers(
        tiny_evidence_disk: Path, api_env: ApiEnv) -> None:
    auth = Principals.bearer(api_env.tokens.a)
    with TestClient(api_env.app(), raise_server_exceptions=False) as client:
        created = client.post("/api/v1/incidents", json=incident_body(), headers=auth)
        assert created.status_code == 201
        incident = created.json()["id"]
        big = os.urandom(1024 * 1024)
        refused = client.post(f"/api/v1/incidents/{incident}/evidence", headers=auth,
                              files={"file": ("dump.bin", big, "application/octet-stream")})
        assert refused.status_code == 507
        assert refused.headers["content-type"].startswith("application/problem+json")
        with api_env.store.read() as conn:
            assert conn.execute(select(func.count()).select_from(evidence)).scalar() == 0
        leftovers = [p for p in tiny_evidence_disk.rglob("*") if p.is_file()]
        assert leftovers == [], "no partial file on the full disk"
        subprocess.run(["mount", "-o", "remount,size=4m", str(tiny_evidence_disk)], check=True)
        stored = client.post(f"/api/v1/incidents/{incident}/evidence", headers=auth,
                             files={"file": ("dump.bin", big, "application/octet-stream")})
        assert stored.status_code == 201
        assert client.get(f"/api/v1/incidents/{incident}", headers=auth).json()[
            "evidence"][0]["size"] == len(big)
