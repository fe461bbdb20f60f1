"""Backup and restore of an embedded home as one unit: the SQLite database (through SQLite's
online backup API, consistent while the platform runs) and the evidence store, with a
manifest that the restore drill checks (SECURITY I7).

A backup folder holds ``pukara.db``, ``evidence/<aa>/<sha256>`` and ``manifest.json``
(row counts, evidence hashes). ``verify`` proves a restored home complete: every evidence
row has its file and the file hashes to its name; the counts match the manifest.
PostgreSQL deployments back up the database with ``pg_dump`` instead (refused here, saying
so); an Elasticsearch index is rebuilt from the database (the search outbox), not restored.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select

from cases.store import Store
from cases.store.tables import alerts, audit_log, evidence, incidents
from pukara.core.errors import ConfigError, InvalidInput
from pukara.core.schema import utcnow

COUNTED = {"alerts": alerts, "incidents": incidents, "evidence": evidence, "audit_log": audit_log}


def _counts(store: Store) -> dict[str, int]:
    with store.read() as conn:
        return {name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for name, table in COUNTED.items()}


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def backup(store: Store, evidence_root: Path, target: Path) -> dict[str, Any]:
    """Write a consistent backup of the database and the evidence store into ``target``."""
    if store.dialect != "sqlite":
        raise ConfigError("this is a PostgreSQL store: back it up with pg_dump")
    if target.exists() and any(target.iterdir()):
        raise InvalidInput(f"backup folder {target} is not empty", field="target")
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    database = store.engine.url.database
    assert database is not None
    with sqlite3.connect(database) as source, sqlite3.connect(target / "pukara.db") as copy:
        source.backup(copy)
    (target / "pukara.db").chmod(0o600)
    with store.read() as conn:
        hashes = sorted(set(conn.execute(select(evidence.c.sha256)).scalars()))
    for sha in hashes:
        blob = evidence_root / sha[:2] / sha
        destination = target / "evidence" / sha[:2] / sha
        destination.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copy2(blob, destination)
        destination.chmod(0o600)
    manifest = {"created_at": utcnow().isoformat(), "counts": _counts(store),
                "evidence": hashes}
    (target / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return manifest


def restore(backup_dir: Path, home: Path) -> None:
    """Lay a backup into an empty home (database and evidence)."""
    if (home / "pukara.db").exists():
        raise InvalidInput(f"{home} already has a database; restore into an empty home",
                           field="home")
    if not (backup_dir / "manifest.json").is_file():
        raise InvalidInput(f"{backup_dir} is not a Pukara backup (no manifest.json)")
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.copy2(backup_dir / "pukara.db", home / "pukara.db")
    (home / "pukara.db").chmod(0o600)
    if (backup_dir / "evidence").is_dir():
        shutil.copytree(backup_dir / "evidence", home / "evidence", dirs_exist_ok=True)


def verify(store: Store, evidence_root: Path, manifest: dict[str, Any]) -> list[str]:
    """Problems of a restored home (empty when complete and intact)."""
    problems = []
    counts = _counts(store)
    for name, expected in manifest["counts"].items():
        if counts.get(name) != expected:
            problems.append(f"{name}: {counts.get(name)} rows, the backup had {expected}")
    with store.read() as conn:
        rows = conn.execute(select(evidence.c.id, evidence.c.sha256)).all()
    for row in rows:
        blob = evidence_root / row.sha256[:2] / row.sha256
        if not blob.is_file():
            problems.append(f"evidence {row.id}: file {row.sha256} missing")
        elif _file_hash(blob) != row.sha256:
            problems.append(f"evidence {row.id}: file {row.sha256} does not match its hash")
    return problems
