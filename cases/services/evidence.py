"""Content-addressed evidence files (SECURITY E3–E7, I2, K6).

A blob lives at ``root/<sha256[:2]>/<sha256>``. An upload streams into ``root/tmp/`` while
it is hashed and counted, stops with :class:`PayloadTooLarge` past its cap (the temp file is
removed), is fsynced, then moved into place with ``os.replace``; if the blob already exists
the temp file is dropped (dedup across entities). Files are 0600 and folders 0700: never
executable, never readable by other users. The original filename is only sanitised
metadata, and blobs are always served as ``application/octet-stream``. A blob's path comes
only from a sha256 read from the database, checked to be 64 hex digits (E5); it is deleted
only when no evidence row references it any more (E6).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Connection, func, select, text

from cases.store.tables import evidence as evidence_table
from pukara.core.errors import InsufficientStorage, InvalidInput, NotFound, PayloadTooLarge

SERVE_CONTENT_TYPE = "application/octet-stream"
CHUNK = 1 << 20
MAX_FILENAME_BYTES = 255
MAX_DECLARED_TYPE = 128
FILE_MODE = 0o600
DIR_MODE = 0o700
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$"}
    | {f"com{i}" for i in range(10)}
    | {f"lpt{i}" for i in range(10)}
    | {"com¹", "com²", "com³", "lpt¹", "lpt²", "lpt³"}
)
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_TYPE_TOKEN = re.compile(r"[^A-Za-z0-9!#$&^_.+\-/;= ]")


def sanitize_filename(name: str) -> str:
    """A harmless display name: basename only, printable characters only, no leading
    dots, no Windows reserved device name, at most 255 UTF-8 bytes; ``unnamed`` if nothing
    is left."""
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(_printable(ch) for ch in name)
    name = _WINDOWS_FORBIDDEN.sub("_", name).strip().lstrip(".").rstrip(". ").strip()
    if not name:
        return "unnamed"
    stem = name.split(".", 1)[0].strip().lower()
    if stem in _WINDOWS_RESERVED:
        name = "_" + name
    return _truncate_utf8(name, MAX_FILENAME_BYTES)


def _printable(ch: str) -> str:
    """Drop control, format, unassigned, private and line-separator characters; any other
    space becomes a plain space."""
    category = unicodedata.category(ch)
    if category in _DROPPED_CATEGORIES:
        return ""
    return " " if category == "Zs" else ch


def _truncate_utf8(name: str, limit: int) -> str:
    """Cut ``name`` to ``limit`` UTF-8 bytes, keeping a short extension when there is one."""
    if len(name.encode()) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    suffix = f".{ext}" if dot and stem and len(ext.encode()) <= 16 else ""
    body = name[: len(name) - len(suffix)] if suffix else name
    room = limit - len(suffix.encode())
    cut = body.encode()[:room].decode("utf-8", errors="ignore")
    return cut + suffix


def sanitize_content_type(declared: str) -> str:
    """The declared content type kept as metadata: printable token characters, ≤ 128."""
    cleaned = _TYPE_TOKEN.sub("", declared).strip()[:MAX_DECLARED_TYPE]
    return cleaned or SERVE_CONTENT_TYPE


def check_sha256(sha256: str) -> str:
    """``sha256`` if it is 64 lower-case hex digits, else InvalidInput."""
    if not isinstance(sha256, str) or not SHA256_HEX.match(sha256):
        raise InvalidInput("a sha256 must be 64 lower-case hex digits", field="sha256")
    return sha256


@dataclass(frozen=True)
class StagedBlob:
    """An upload written to a temp file, hashed and counted, not yet in place."""

    temp: Path
    sha256: str
    size: int


class EvidenceStore:
    """Blob storage for evidence files under ``root`` (``$PUKARA_HOME/evidence``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"

    def _ensure_dir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        path.chmod(DIR_MODE)

    def path(self, sha256: str) -> Path:
        """Where the blob ``sha256`` lives (validated; never from client input)."""
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256

    def exists(self, sha256: str) -> bool:
        """True when the blob is stored."""
        return self.path(sha256).is_file()

    def stage(self, stream: BinaryIO, *, max_bytes: int) -> StagedBlob:
        """Stream ``stream`` into a temp file, hashing and counting; PayloadTooLarge past
        ``max_bytes`` (the temp file is removed). The file is fsynced before returning."""
        self._ensure_dir(self.root)
        self._ensure_dir(self.tmp)
        handle, name = tempfile.mkstemp(dir=self.tmp, prefix="up-", suffix=".part")
        temp = Path(name)
        digest, size = hashlib.sha256(), 0
        try:
            with os.fdopen(handle, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLarge(
                            f"evidence file is larger than {max_bytes} bytes", field="file"
                        )
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            temp.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise InsufficientStorage(
                    "no space left for the evidence file; nothing was stored, retry later",
                    field="file",
                ) from None
            raise
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return StagedBlob(temp, digest.hexdigest(), size)

    def place(self, staged: StagedBlob) -> bool:
        """Move a staged upload to its content address; True if it was new (else deduped)."""
        target = self.path(staged.sha256)
        if target.is_file():
            staged.temp.unlink(missing_ok=True)
            return False
        self._ensure_dir(target.parent)
        staged.temp.chmod(FILE_MODE)
        staged.temp.replace(target)
        _fsync_dir(target.parent)
        return True

    def discard(self, staged: StagedBlob) -> None:
        """Drop a staged upload that will not be kept."""
        staged.temp.unlink(missing_ok=True)

    def put(self, stream: BinaryIO, *, max_bytes: int) -> StagedBlob:
        """Stage and place in one step; the returned temp path no longer exists."""
        staged = self.stage(stream, max_bytes=max_bytes)
        self.place(staged)
        return staged

    def open(self, sha256: str) -> BinaryIO:
        """The blob for reading; NotFound if it is not stored."""
        try:
            return self.path(sha256).open("rb")
        except FileNotFoundError:
            raise NotFound("no such evidence file") from None

    def release(self, conn: Connection, sha256: str) -> bool:
        """Delete the blob if no evidence row references it; True if it was deleted.

        Call in a write transaction *after* the deletion of the row was committed, so a
        rollback can never leave a row without its file. The blob lock serialises this with
        an upload of the same content (SQLite already serialises writers).
        """
        lock_blob(conn, sha256)
        count = conn.execute(
            select(func.count()).select_from(evidence_table)
            .where(evidence_table.c.sha256 == sha256)
        ).scalar_one()
        if count:
            return False
        path = self.path(sha256)
        if not path.exists():
            return False
        path.unlink()
        _fsync_dir(path.parent)
        return True

    def remove_orphans(self, conn: Connection) -> int:
        """Delete blobs no evidence row references (left by a crash between the file move
        and the row's commit, I2); returns how many. Run in a write transaction at boot."""
        removed = 0
        for folder in sorted(self.root.glob("[0-9a-f][0-9a-f]")):
            names = {p.name for p in folder.iterdir() if SHA256_HEX.match(p.name)}
            if not names:
                continue
            referenced = set(conn.execute(
                select(evidence_table.c.sha256).where(evidence_table.c.sha256.in_(names))
            ).scalars())
            for name in sorted(names - referenced):
                if self.release(conn, name):
                    removed += 1
        return removed

    def sweep(self) -> int:
        """Remove temp files left by an interrupted upload (at boot); returns how many."""
        if not self.tmp.is_dir():
            return 0
        removed = 0
        for leftover in self.tmp.iterdir():
            if leftover.is_file() or leftover.is_symlink():
                leftover.unlink(missing_ok=True)
                removed += 1
        return removed


def lock_blob(conn: Connection, sha256: str) -> None:
    """Serialise work on one blob until the transaction ends (PostgreSQL advisory lock)."""
    if conn.dialect.name == "postgresql":
        key = int(check_sha256(sha256)[:15], 16)
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
