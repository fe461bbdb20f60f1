"""A Maildir mailbox → one RawReport (format ``eml``) per unseen message.

Messages are read with ``mailbox.Maildir``. A message counts as processed once it is in
``cur/`` with the Seen flag ``S`` (the Maildir convention), so a restart does not ingest it
again. ``run_once(deliver)`` marks a message only after ``deliver`` returned; ``reports()``
marks it when the consumer asks for the next one (or closes the generator normally), so a
crash while a message is being processed leaves it unseen and it is delivered again.

The entity is not taken from the mail's From header (SECURITY D10): it is the mailbox's,
given by configuration (``entity_id``), or None for the national inbox.
"""

from __future__ import annotations

import logging
import mailbox
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, cast

from pukara.core.schema import IngestResult, RawReport

log = logging.getLogger(__name__)

SEEN = "S"


@dataclass
class MaildirPass:
    """What one pass over the mailbox did."""

    delivered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    result: IngestResult = field(default_factory=IngestResult)


class MaildirSource:
    """Unseen messages of a Maildir as e-mail reports."""

    name: ClassVar[str] = "maildir"

    def __init__(
        self,
        path: str | os.PathLike[str],
        source: str = "mail",
        entity_id: str | None = None,
        create: bool = False,
    ) -> None:
        self.path = Path(path)
        self.source = source
        self.entity_id = entity_id
        self.mailbox = mailbox.Maildir(self.path, factory=None, create=create)

    def unseen_keys(self) -> list[str]:
        """Keys of messages not yet marked Seen, oldest file name first."""
        keys = []
        for key in sorted(self.mailbox.keys()):
            message = self.mailbox.get_message(key)
            if SEEN not in message.get_flags():
                keys.append(key)
        return keys

    def reports(self) -> Iterator[RawReport]:
        """One RawReport per unseen message; each is marked Seen once the consumer moves on."""
        for key in self.unseen_keys():
            with self.mailbox.get_file(key) as stream:
                yield self._report(key, stream)
            self.mark_seen(key)

    def run_once(self, deliver: Callable[[RawReport], IngestResult]) -> MaildirPass:
        """Deliver every unseen message; a message whose delivery raised stays unseen."""
        summary = MaildirPass()
        for key in self.unseen_keys():
            try:
                with self.mailbox.get_file(key) as stream:
                    result = deliver(self._report(key, stream))
            except Exception:
                log.exception("delivering message %s from %s failed", key, self.path)
                summary.failed.append(key)
                continue
            self.mark_seen(key)
            summary.delivered.append(key)
            summary.result.add(result)
        return summary

    def mark_seen(self, key: str) -> None:
        """Move the message to ``cur/`` with the Seen flag (Maildir naming: ``key:2,S``)."""
        message = self.mailbox.get_message(key)
        info = message.get_info()
        colon = self.mailbox.colon
        old = self.path / message.get_subdir() / (f"{key}{colon}{info}" if info else key)
        flags = "".join(sorted(set(message.get_flags()) | {SEEN}))
        new = self.path / "cur" / f"{key}{colon}2,{flags}"
        if old != new:
            old.rename(new)

    def _report(self, key: str, stream: Any) -> RawReport:
        return RawReport(
            stream=cast(BinaryIO, stream),
            source=self.source,
            filename=f"{key}.eml",
            entity_id=self.entity_id,
            format="eml",
            metadata={"maildir_key": key},
        )
