"""Content-addressed evidence files (SECURITY E3–E7, I2, K6). Inputs are constructed bytes."""

from __future__ import annotations

import hashlib
import io
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from cases.services.evidence import (
    EvidenceStore,
    sanitize_content_type,
    sanitize_filename,
)
from cases.services.identity import Identity, Principal, Role
from cases.services.incidents import IncidentService
from cases.store.engine import Store, make_engine
from cases.store.tables import audit_log, evidence
from pukara.core.config import Settings
from pukara.core.errors import InvalidInput, NotFound, PayloadTooLarge
from pukara.core.schema import Entity, IncidentReport

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


class Trickle(io.RawIOBase):
    """A stream that hands out ``total`` bytes in small reads and counts what was read."""

    def __init__(self, total: int, piece: int = 4096) -> None:
        self.left = total
        self.piece = piece
        self.served = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        take = min(self.left, self.piece if size < 0 else min(size, self.piece))
        self.left -= take
        self.served += take
        return b"A" * take


@pytest.fixture
def store(tmp_path: Path) -> EvidenceStore:
    return EvidenceStore(tmp_path / "evidence")


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_blob_is_content_addressed(store: EvidenceStore) -> None:
    staged = store.put(io.BytesIO(EICAR), max_bytes=1024)
    assert staged.sha256 == EICAR_SHA256 == hashlib.sha256(EICAR).hexdigest()
    assert staged.size == 68
    target = store.root / "27" / EICAR_SHA256
    assert files_under(store.root) == [target]
    assert target.read_bytes() == EICAR
    with store.open(EICAR_SHA256) as handle:
        assert handle.read() == EICAR


def test_permissions_private_and_never_executable(store: EvidenceStore) -> None:
    store.put(io.BytesIO(EICAR), max_bytes=1024)
    blob = store.path(EICAR_SHA256)
    assert stat.S_IMODE(blob.stat().st_mode) == 0o600
    for folder in (store.root, store.tmp, blob.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_same_content_twice_is_stored_once(store: EvidenceStore) -> None:
    first = store.stage(io.BytesIO(EICAR), max_bytes=1024)
    assert store.place(first) is True
    second = store.stage(io.BytesIO(EICAR), max_bytes=1024)
    assert store.place(second) is False
    assert not second.temp.exists()
    assert files_under(store.root) == [store.path(EICAR_SHA256)]


def test_cap_exceeded_leaves_no_file_and_no_temp(store: EvidenceStore) -> None:
    stream = Trickle(total=10 * 1024 * 1024, piece=64 * 1024)
    with pytest.raises(PayloadTooLarge, match="larger than 100000 bytes"):
        store.put(stream, max_bytes=100_000)
    assert files_under(store.root) == []
    # reading stopped at the first chunk past the cap, not at the end of the stream
    assert stream.served == 2 * 64 * 1024


def test_exactly_at_cap_is_accepted(store: EvidenceStore) -> None:
    staged = store.put(Trickle(total=100_000), max_bytes=100_000)
    assert staged.size == 100_000
    assert store.path(staged.sha256).stat().st_size == 100_000


def test_sweep_removes_leftover_temp_files(store: EvidenceStore) -> None:
    store.put(io.BytesIO(EICAR), max_bytes=1024)
    leftover = store.stage(io.BytesIO(b"interrupted upload"), max_bytes=1024)
    (store.tmp / "up-crashed.part").write_bytes(b"partial")
    assert store.sweep() == 2
    assert not leftover.temp.exists()
    assert files_under(store.root) == [store.path(EICAR_SHA256)]
    assert store.sweep() == 0


def test_sweep_on_a_fresh_store(store: EvidenceStore) -> None:
    assert store.sweep() == 0


@pytest.mark.parametrize(
    ("hostile", "stored"),
    [
        ("../../etc/cron.d/x", "x"),
        ("..\\..\\windows\\system32\\evil.dll", "evil.dll"),
        ("CON", "_CON"),
        ("con.txt", "_con.txt"),
        ("LPT1", "_LPT1"),
        (".html", "html"),
        ("...htaccess", "htaccess"),
        ("report.html", "report.html"),
        ("bad\x00name.exe", "badname.exe"),
        ("line\r\nbreak.txt", "linebreak.txt"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ('a<b>c:d"e|f?g*h.txt', "a_b_c_d_e_f_g_h.txt"),
        ("trailing. . ", "trailing"),
        ("/", "unnamed"),
        ("", "unnamed"),
        ("\x00\x01", "unnamed"),
    ],
)
def test_hostile_filenames(hostile: str, stored: str) -> None:
    assert sanitize_filename(hostile) == stored


def test_300_byte_name_is_cut_to_255_bytes_keeping_the_extension() -> None:
    name = "a" * 296 + ".pdf"
    cleaned = sanitize_filename(name)
    assert len(cleaned.encode()) == 255
    assert cleaned == "a" * 251 + ".pdf"


def test_multibyte_name_is_cut_on_a_character_boundary() -> None:
    name = "ñ" * 200 + ".txt"  # 404 bytes
    cleaned = sanitize_filename(name)
    assert cleaned == "ñ" * 125 + ".txt"
    assert len(cleaned.encode()) == 254


@given(st.text(max_size=400))
def test_any_name_is_a_safe_basename(name: str) -> None:
    cleaned = sanitize_filename(name)
    assert cleaned
    assert "/" not in cleaned and "\\" not in cleaned and "\x00" not in cleaned
    assert not cleaned.startswith(".")
    assert len(cleaned.encode()) <= 255
    assert all(ch.isprintable() or ch == " " for ch in cleaned)


def test_declared_content_type_is_only_metadata() -> None:
    assert sanitize_content_type("text/html; charset=utf-8") == "text/html; charset=utf-8"
    assert sanitize_content_type("text/plain\r\nX-Evil: 1") == "text/plainX-Evil 1"
    assert sanitize_content_type("") == "application/octet-stream"


@pytest.mark.parametrize("bad", ["../../etc/passwd", EICAR_SHA256.upper(), "0" * 63, ""])
def test_paths_only_from_a_valid_sha256(store: EvidenceStore, bad: str) -> None:
    with pytest.raises(InvalidInput, match="64 lower-case hex"):
        store.path(bad)


def test_open_missing_blob(store: EvidenceStore) -> None:
    with pytest.raises(NotFound):
        store.open("0" * 64)


@pytest.fixture
def service(tmp_path: Path, pukara_home: Path) -> Iterator[IncidentService]:
    case_store = Store(make_engine(f"sqlite:///{tmp_path / 'pukara.db'}"), home=tmp_path).open()
    identity = Identity(case_store)
    for slug in ("ent-a", "ent-b"):
        identity.add_entity(Entity(id=slug, name=slug, sector="energy"))
    yield IncidentService(case_store, Settings(home=pukara_home),
                          EvidenceStore(tmp_path / "evidence"))
    case_store.close()


def _incident_with_sample(service: IncidentService, principal: Principal) -> dict[str, Any]:
    report = IncidentReport(title="Muestra", classification="malicious-code/infected-system",
                            detected_at=datetime(2026, 3, 1, tzinfo=UTC))
    with service.store.write() as conn:
        incident = service.submit(conn, principal, report)
        return service.add_evidence(conn, principal, incident["id"], filename="eicar.com",
                                    content_type="application/x-msdownload",
                                    stream=io.BytesIO(EICAR), max_bytes=1024)


def test_delete_keeps_the_blob_while_another_entity_references_it(
    service: IncidentService,
) -> None:
    entity_a = Principal(Role.REPORTER, 1, entity_id="ent-a")
    entity_b = Principal(Role.REPORTER, 2, entity_id="ent-b")
    copy_a = _incident_with_sample(service, entity_a)
    copy_b = _incident_with_sample(service, entity_b)
    blobs = service.evidence
    assert copy_a["sha256"] == copy_b["sha256"] == EICAR_SHA256
    assert copy_a["id"] != copy_b["id"]
    assert files_under(blobs.root) == [blobs.path(EICAR_SHA256)]
    with service.store.read() as conn:  # the declared type is kept only as metadata
        assert conn.execute(select(evidence.c.entity_id, evidence.c.declared_type)
                            .order_by(evidence.c.entity_id)).all() == [
            ("ent-a", "application/x-msdownload"), ("ent-b", "application/x-msdownload")]
    with pytest.raises(NotFound):  # B cannot delete A's copy, even naming its ids
        service.delete_evidence(entity_b, copy_a["incident_id"], copy_a["id"])
    with pytest.raises(NotFound):  # nor reach it through its own incident
        service.delete_evidence(entity_b, copy_b["incident_id"], copy_a["id"])
    assert service.delete_evidence(entity_a, copy_a["incident_id"], copy_a["id"]) is False
    assert service.get(entity_a, copy_a["incident_id"])["evidence"] == []
    assert [e["id"] for e in service.get(entity_b, copy_b["incident_id"])["evidence"]] == [
        copy_b["id"]]
    with blobs.open(EICAR_SHA256) as handle:
        assert handle.read() == EICAR
    assert service.delete_evidence(entity_b, copy_b["incident_id"], copy_b["id"]) is True
    assert files_under(blobs.root) == []
    with service.store.read() as conn:
        assert [r.details["sha256"] for r in conn.execute(
            select(audit_log).where(audit_log.c.action == "evidence.delete"))] == [
            EICAR_SHA256, EICAR_SHA256]
        assert conn.execute(select(evidence.c.id)).all() == []


def test_remove_orphans_keeps_referenced_blobs(service: IncidentService) -> None:
    kept = _incident_with_sample(service, Principal(Role.REPORTER, 1, entity_id="ent-a"))
    blobs = service.evidence
    # a file moved into place whose row never committed (crash between the two)
    orphan = blobs.put(io.BytesIO(b"never committed"), max_bytes=1024)
    assert len(files_under(blobs.root)) == 2
    with service.store.write() as conn:
        assert blobs.remove_orphans(conn) == 1
    assert files_under(blobs.root) == [blobs.path(kept["sha256"])]
    assert not blobs.exists(orphan.sha256)
    with service.store.write() as conn:
        assert blobs.remove_orphans(conn) == 0
