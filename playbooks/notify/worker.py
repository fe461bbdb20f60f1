"""The outbox worker: claim with a lease, deliver, mark sent; retry with backoff.

Guarantee: **at-least-once delivery with a stable idempotency key**, which is exactly-once
at a receiver that dedupes on it. A message is claimed by one atomic UPDATE (``pending`` and
due, or ``sending`` with an expired lease → ``sending`` with a new lease and this worker's
name), delivered outside any transaction, then marked ``sent`` only if this worker still holds
the claim. If the worker dies after the receiver accepted the message but before the mark,
the lease runs out and the message is delivered again with the *same* ``Message-ID`` /
``Idempotency-Key``, so the receiver can drop the copy. Inbox messages are written in the
mark-sent transaction itself and so are stored exactly once. A failure waits
``backoff × 2^(attempts-1)`` (capped at one hour); after ``max_attempts`` the row is ``dead``
and audited, never dropped.

``PUKARA_OUTBOX_FAULT=pause-after-deliver[:<channel>]`` (tests only) makes the worker stop
between a successful delivery (on that channel) and the mark, so a test can kill it there.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import RowMapping, select, update

from cases.services import audit
from cases.store import Store
from playbooks.notify.channels import Channel, DeliveryFailed
from playbooks.notify.config import NotifyConfig
from playbooks.tables import outbox
from pukara.core.schema import utcnow

FAULT_ENV = "PUKARA_OUTBOX_FAULT"
MAX_BACKOFF = timedelta(hours=1)


@dataclass
class DrainResult:
    """What one pass of the worker did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0


class OutboxWorker:
    """Delivers due outbox rows through their channels."""

    def __init__(self, store: Store, config: NotifyConfig, channels: Mapping[str, Channel],
                 *, name: str | None = None, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.config = config
        self.channels = dict(channels)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.clock = clock

    def claim(self) -> RowMapping | None:
        """Atomically take the oldest due message (or one whose lease expired)."""
        now = self.clock()
        due = ((outbox.c.state == "pending") & (outbox.c.next_attempt_at <= now)) | (
            (outbox.c.state == "sending") & (outbox.c.lease_until < now))
        with self.store.write() as conn:
            query = select(outbox.c.id).where(due).order_by(outbox.c.id).limit(1)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            row_id = conn.execute(query).scalar_one_or_none()
            if row_id is None:
                return None
            lease = now + timedelta(seconds=self.config.lease_seconds)
            changed = conn.execute(update(outbox).where(outbox.c.id == row_id, due).values(
                state="sending", lease_until=lease, claimed_by=self.name,
                attempts=outbox.c.attempts + 1)).rowcount
            if not changed:
                return None
            return conn.execute(select(outbox).where(outbox.c.id == row_id)).mappings().one()

    def run_once(self) -> DrainResult:
        """Deliver every message due now; returns the counts."""
        result = DrainResult()
        while (row := self.claim()) is not None:
            self._handle(row, result)
        return result

    def run_forever(self, stop: Callable[[], bool], idle_seconds: float = 1.0) -> None:
        """Drain, sleep, repeat until ``stop()`` (the background worker of ``serve``)."""
        while not stop():
            if not self.run_once().sent:
                time.sleep(idle_seconds)

    def _handle(self, row: RowMapping, result: DrainResult) -> None:
        channel = self.channels.get(row["channel"])
        try:
            if channel is None:
                raise DeliveryFailed(f"no channel {row['channel']!r}", permanent=True)
            channel.deliver(row)
        except DeliveryFailed as exc:
            self._failed(row, str(exc), exc.permanent, result)
            return
        fault = os.environ.get(FAULT_ENV, "")
        if fault in ("pause-after-deliver", f"pause-after-deliver:{row['channel']}"):
            time.sleep(3600)
        self._sent(row, channel, result)

    def _sent(self, row: RowMapping, channel: Channel, result: DrainResult) -> None:
        with self.store.write() as conn:
            mine = (outbox.c.id == row["id"]) & (outbox.c.claimed_by == self.name) & (
                outbox.c.state == "sending")
            if getattr(channel, "transactional", False):
                channel.deliver_in(conn, row)  # type: ignore[attr-defined]
            changed = conn.execute(update(outbox).where(mine).values(
                state="sent", sent_at=self.clock(), lease_until=None, last_error=None)).rowcount
        result.sent += 1 if changed else 0

    def _failed(self, row: RowMapping, error: str, permanent: bool,
                result: DrainResult) -> None:
        attempts = int(row["attempts"])
        dead = permanent or attempts >= self.config.max_attempts
        delay = min(timedelta(seconds=self.config.backoff_seconds * 2 ** (attempts - 1)),
                    MAX_BACKOFF)
        with self.store.write() as conn:
            changed = conn.execute(update(outbox).where(
                outbox.c.id == row["id"], outbox.c.claimed_by == self.name,
                outbox.c.state == "sending").values(
                state="dead" if dead else "pending", lease_until=None,
                next_attempt_at=self.clock() + delay, last_error=error[:2000])).rowcount
            if not changed:
                return
            if dead:
                audit.append(conn, audit.SYSTEM, "notify.dead", "outbox", row["message_id"],
                             details={"channel": row["channel"], "attempts": attempts,
                                      "error": error[:500]})
        if dead:
            result.dead += 1
        else:
            result.retried += 1
