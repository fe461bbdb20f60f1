"""A spool folder: one sub-folder per entity id; every file dropped there is delivered once.

Layout under the spool root::

    <spool>/<entity>/report.csv            dropped by the entity (or its MTA, sftp, …)
    <spool>/<entity>/.processing/…         claimed: being delivered
    <spool>/<entity>/done/…                delivered
    <spool>/<entity>/failed/…              not delivered; <name>.reason.txt says why

A file is claimed by an atomic rename into ``.processing`` before it is delivered, so two
pollers never deliver the same file and a crash leaves it there; on the next pass anything
left in ``.processing`` is delivered again (the store deduplicates, so a crash between
delivery and the move costs a duplicate, never a loss). Partial files (names starting with
``.`` or ending ``.part``/``.tmp``) are left alone until they are renamed. Files in a folder
that is not a known entity go to ``failed/`` with the reason.

``deliver(report) -> IngestResult`` is given by the composition root (the real pipeline).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from pukara.core.schema import SLUG, IngestResult, RawReport

log = logging.getLogger(__name__)

PROCESSING = ".processing"
DONE = "done"
FAILED = "failed"
PARTIAL_SUFFIXES = (".part", ".tmp")
MAX_REASON_CHARS = 4000

Deliver = Callable[[RawReport], IngestResult]


@dataclass
class SpoolPass:
    """What one pass over the spool did."""

    delivered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    result: IngestResult = field(default_factory=IngestResult)


def is_partial(name: str) -> bool:
    """A file still being written: hidden, or ``.part``/``.tmp``."""
    return name.startswith(".") or name.endswith(PARTIAL_SUFFIXES)


class SpoolSource:
    """Delivers files from ``<spool>/<entity>/`` exactly once per drop."""

    name: ClassVar[str] = "spool"

    def __init__(
        self,
        root: str | os.PathLike[str],
        entities: Collection[str] | Callable[[str], bool],
        source: str = "spool",
    ) -> None:
        """``entities`` are the known entity ids (or a predicate over an id)."""
        self.root = Path(root)
        self.source = source
        if callable(entities):
            self._known: Callable[[str], bool] = entities
        else:
            known = frozenset(entities)
            self._known = known.__contains__

    def run_once(self, deliver: Deliver) -> SpoolPass:
        """Recover what a crash left in ``.processing``, then deliver every new file."""
        summary = SpoolPass()
        for folder in self._entity_folders():
            entity = folder.name
            if not (SLUG.match(entity) and self._known(entity)):
                for path in self._dropped(folder):
                    self._fail(path, f"unknown entity {entity!r}: no such entity id", summary)
                continue
            processing = folder / PROCESSING
            for path in sorted(processing.iterdir()) if processing.is_dir() else []:
                if path.is_file():
                    summary.recovered.append(f"{entity}/{path.name}")
                    self._deliver(path, entity, deliver, summary)
            for path in self._dropped(folder):
                claimed = self._claim(path)
                if claimed is not None:
                    self._deliver(claimed, entity, deliver, summary)
        return summary

    def watch(
        self, deliver: Deliver, stop_event: threading.Event, poll_seconds: float = 2.0
    ) -> None:
        """Poll until ``stop_event`` is set; a failing pass is logged and retried."""
        while not stop_event.is_set():
            try:
                self.run_once(deliver)
            except OSError:
                log.exception("spool pass over %s failed; retrying", self.root)
            stop_event.wait(poll_seconds)

    def _entity_folders(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for folder in sorted(self.root.iterdir()):
            if folder.is_dir() and not folder.name.startswith("."):
                yield folder

    def _dropped(self, folder: Path) -> list[Path]:
        return [
            path
            for path in sorted(folder.iterdir())
            if path.is_file() and not is_partial(path.name)
        ]

    def _claim(self, path: Path) -> Path | None:
        """Atomically move ``path`` into ``.processing``; None if another poller won."""
        processing = path.parent / PROCESSING
        processing.mkdir(exist_ok=True)
        target = processing / path.name
        if target.exists():
            return None
        try:
            path.rename(target)
        except FileNotFoundError:
            return None
        return target

    def _deliver(self, path: Path, entity: str, deliver: Deliver, summary: SpoolPass) -> None:
        name = f"{entity}/{path.name}"
        try:
            with path.open("rb") as stream:
                report = RawReport(
                    stream=stream,
                    source=self.source,
                    filename=path.name,
                    entity_id=entity,
                    metadata={"spool_path": name},
                )
                result = deliver(report)
        except Exception as exc:
            self._fail(path, f"delivery failed: {type(exc).__name__}: {exc}", summary)
            return
        summary.result.add(result)
        if result.rejected and not (result.accepted or result.duplicates):
            errors = "; ".join(e.error for e in result.errors[:5])
            self._fail(path, f"all {result.rejected} record(s) rejected: {errors}", summary)
            return
        _move(path, _entity_folder(path) / DONE)
        summary.delivered.append(name)

    def _fail(self, path: Path, reason: str, summary: SpoolPass) -> None:
        entity_folder = _entity_folder(path)
        moved = _move(path, entity_folder / FAILED)
        moved.with_name(moved.name + ".reason.txt").write_text(
            reason[:MAX_REASON_CHARS] + "\n", encoding="utf-8"
        )
        summary.failed.append(f"{entity_folder.name}/{path.name}")


def _entity_folder(path: Path) -> Path:
    return path.parent.parent if path.parent.name == PROCESSING else path.parent


def _move(path: Path, folder: Path) -> Path:
    """Move ``path`` into ``folder`` without overwriting an earlier file of the same name."""
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    number = 1
    while target.exists():
        target = folder / f"{path.stem}.{number}{path.suffix}"
        number += 1
    path.rename(target)
    return target
