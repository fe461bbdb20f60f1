"""Files and folders → RawReports, one per file, streamed.

``FileSource().reports(paths)`` walks each path (a directory recursively, in sorted order,
skipping hidden entries) and yields one :class:`RawReport` per file with ``filename`` set.
A ``.gz`` file is opened as a gzip stream and its ``filename`` loses the ``.gz`` (so a
parser or sniffer sees ``dns.log``); nothing is read whole. Each report's stream is open
only while the consumer holds it: it is closed when the generator moves to the next file or
is closed. ``open_report(path)`` is the same for one file as a context manager. A missing
or unreadable path raises :class:`SourceUnavailable` naming it, before anything is yielded
for that path. A ``.gz`` that is not gzip raises :class:`CorruptGzip` when opened; one that
is truncated or damaged part-way raises it from the read, so the whole report fails with
the file named (the records already yielded stand).
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, ClassVar, cast

from pukara.core.errors import InvalidInput, ParseError
from pukara.core.schema import RawReport

BUFFER_BYTES = 1 << 20


class SourceUnavailable(InvalidInput):
    """A path that does not exist or cannot be read."""


def _display_name(path: Path) -> str:
    return path.name[:-3] if path.suffix == ".gz" else path.name


class CorruptGzip(ParseError):
    """A ``.gz`` file that is not gzip, or is truncated or damaged part-way."""


class _CheckedGzip(gzip.GzipFile):
    """GzipFile whose decompression errors name the file (as CorruptGzip)."""

    def _fail(self, exc: Exception) -> CorruptGzip:
        return CorruptGzip(f"corrupt or truncated gzip {self.name!r}: {exc}")

    def read(self, size: int | None = -1) -> bytes:
        try:
            return super().read(size)
        except (EOFError, OSError, zlib.error) as exc:
            raise self._fail(exc) from None

    def read1(self, size: int = -1) -> bytes:
        try:
            return super().read1(size)
        except (EOFError, OSError, zlib.error) as exc:
            raise self._fail(exc) from None

    def readline(self, size: int | None = -1) -> bytes:
        try:
            return super().readline(size)
        except (EOFError, OSError, zlib.error) as exc:
            raise self._fail(exc) from None

    def peek(self, n: int) -> bytes:
        try:
            return super().peek(n)
        except (EOFError, OSError, zlib.error) as exc:
            raise self._fail(exc) from None


def _open(path: Path) -> BinaryIO:
    try:
        raw = path.open("rb", buffering=BUFFER_BYTES)
    except OSError as exc:
        raise SourceUnavailable(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    if path.suffix != ".gz":
        return raw
    magic = raw.read(2)
    raw.seek(0)
    if magic != b"\x1f\x8b":
        raw.close()
        raise CorruptGzip(f"{str(path)!r} ends in .gz but is not gzip")
    return cast(BinaryIO, _CheckedGzip(filename=str(path), fileobj=raw, mode="rb"))


def expand(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Every file under ``paths`` (directories recursively, sorted, hidden entries skipped)."""
    for item in paths:
        path = Path(item)
        if path.is_dir():
            try:
                children = sorted(path.rglob("*"))
            except OSError as exc:
                raise SourceUnavailable(f"cannot list {str(path)!r}: {exc}") from None
            rel = (child for child in children if child.is_file())
            yield from (
                c for c in rel if not any(p.startswith(".") for p in c.relative_to(path).parts)
            )
        elif path.is_file():
            yield path
        else:
            raise SourceUnavailable(f"no such file or directory: {str(path)!r}")


class FileSource:
    """Reports from local files and folders (``pukara ingest PATH...``)."""

    name: ClassVar[str] = "file"

    @contextmanager
    def open_report(
        self,
        path: str | os.PathLike[str],
        entity_id: str | None = None,
        fmt: str | None = None,
        exercise_id: str | None = None,
    ) -> Iterator[RawReport]:
        """One file as a RawReport whose stream is closed when the block ends."""
        file = Path(path)
        if not file.is_file():
            raise SourceUnavailable(f"not a readable file: {str(file)!r}")
        stream = _open(file)
        try:
            yield RawReport(
                stream=stream,
                source="file",
                filename=_display_name(file),
                entity_id=entity_id,
                format=fmt,
                exercise_id=exercise_id,
                metadata={"path": str(file), "compressed": file.suffix == ".gz"},
            )
        finally:
            stream.close()

    def reports(
        self,
        paths: Iterable[str | os.PathLike[str]],
        entity_id: str | None = None,
        fmt: str | None = None,
        exercise_id: str | None = None,
    ) -> Iterator[RawReport]:
        """A RawReport per file under ``paths``; each stream closes when the next is taken."""
        for file in expand(paths):
            with self.open_report(file, entity_id, fmt, exercise_id) as report:
                yield report
