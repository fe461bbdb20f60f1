"""The persistent notification outbox: enqueue in the caller's transaction, read the inbox.

``Outbox.enqueue(conn, kind, …)`` renders the message once (sandboxed, :mod:`.templates`) and
writes one row per channel and recipient — the entity's API inbox always, each contact's
e-mail, each webhook configured for it; staff messages go to the staff mailbox and staff
webhooks — inside ``conn``, so the message exists if and only if the change that caused it
committed. ``key`` names the cause (``run:<id>:step:<id>``): enqueuing the same cause twice
adds nothing. A recipient over its hourly cap gets the row in state ``capped`` (kept, not sent)
and an audit entry, so a loop is visible and bounded (SECURITY C5). Addresses with CR or LF
are refused (D11). Delivery is :mod:`.worker`'s job.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cases.services import audit
from cases.services.identity import Principal
from cases.store import Store
from cases.store.tables import entities
from playbooks.notify.config import NotifyConfig
from playbooks.notify.templates import Templates
from playbooks.tables import inbox_messages, outbox
from pukara.core.errors import InvalidInput, PermissionDenied
from pukara.core.observables import ObservableType, normalize
from pukara.core.schema import utcnow

_NAMESPACE = uuid.UUID("6f0c2a52-6a43-4d55-9a59-7f0e4b0c9d11")
MAX_INBOX = 500


def message_id(dedupe_key: str) -> str:
    """A stable RFC 5322 Message-ID for one outbox row (the receivers' idempotency key)."""
    return f"<{uuid.uuid5(_NAMESPACE, dedupe_key)}@pukara.invalid>"


def checked_address(address: str) -> str:
    """A normalized e-mail address; CR, LF or anything not an address is refused (D11)."""
    if any(ch in address for ch in "\r\n\0"):
        raise InvalidInput("an e-mail address must not contain CR, LF or NUL", field="recipient")
    try:
        return normalize(ObservableType.EMAIL, address)
    except (InvalidInput, ValueError) as exc:
        raise InvalidInput(f"not an e-mail address: {address!r}", field="recipient") from exc


class Outbox:
    """Writes messages into the outbox and reads the entity inbox."""

    def __init__(self, store: Store, config: NotifyConfig, templates: Templates) -> None:
        self.store = store
        self.config = config
        self.templates = templates

    def enqueue(self, conn: Connection, kind: str, *, key: str, entity_id: str | None,
                values: Mapping[str, object], case_id: str | None = None,
                actor: audit.Actor = audit.SYSTEM) -> int:
        """Queue ``kind`` for an entity (or staff when None) inside ``conn``; rows added."""
        language, targets = self._targets(conn, entity_id, kind)
        context = dict(values)
        if entity_id is not None:
            context.setdefault("entity_name", self._entity_name(conn, entity_id))
        rendered = self.templates.render(kind, language, context)
        common = {"kind": kind, "entity_id": entity_id, "case_id": case_id,
                  "language": language, "subject": rendered.subject, "body": rendered.body}
        added = 0
        for channel, recipient in targets:
            row = {**common, "channel": channel, "recipient": recipient,
                   "dedupe_key": f"{key}|{channel}|{recipient}"[:300]}
            added += self._insert(conn, row, actor)
        return added

    def _targets(self, conn: Connection, entity_id: str | None,
                 kind: str) -> tuple[str, list[tuple[str, str]]]:
        hooks = [("webhook", hook.name) for hook in self.config.webhooks_for(entity_id, kind)]
        if entity_id is None:
            mail = [("email", checked_address(self.config.staff_email))] \
                if self.config.staff_email else []
            return "es", mail + hooks
        row = conn.execute(select(entities.c.language, entities.c.doc)
                           .where(entities.c.id == entity_id)).first()
        if row is None:
            raise InvalidInput(f"no entity {entity_id!r}", field="entity_id")
        contacts = (row.doc or {}).get("contacts") or []
        mails = sorted({checked_address(c["email"]) for c in contacts if c.get("email")})
        return row.language, [("inbox", entity_id), *(("email", m) for m in mails), *hooks]

    @staticmethod
    def _entity_name(conn: Connection, entity_id: str) -> str:
        return str(conn.execute(select(entities.c.name).where(entities.c.id == entity_id))
                   .scalar_one_or_none() or entity_id)

    def _insert(self, conn: Connection, row: dict[str, Any], actor: audit.Actor) -> int:
        now = utcnow()
        state = "pending"
        if row["channel"] != "inbox" and self._over_cap(conn, row["recipient"], now):
            state = "capped"
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        statement = dialect_insert(outbox).values(
            **row, message_id=message_id(row["dedupe_key"]), state=state, attempts=0,
            next_attempt_at=now, created_at=now,
        ).on_conflict_do_nothing(index_elements=[outbox.c.dedupe_key])
        added = conn.execute(statement).rowcount or 0
        if added and state == "capped":
            audit.append(conn, actor, "notify.capped", "outbox", row["recipient"],
                         details={"kind": row["kind"], "channel": row["channel"],
                                  "per_hour": self.config.per_recipient_per_hour})
        return added

    def _over_cap(self, conn: Connection, recipient: str, now: Any) -> bool:
        query = select(func.count()).select_from(outbox).where(
            outbox.c.recipient == recipient, outbox.c.state != "capped",
            outbox.c.created_at >= now - timedelta(hours=1))
        return int(conn.execute(query).scalar_one()) >= self.config.per_recipient_per_hour

    def inbox_for(self, principal: Principal, limit: int = 100) -> list[dict[str, Any]]:
        """The API inbox of the principal's entity, newest first (for GET /api/v1/inbox)."""
        if principal.entity_id is None:
            raise PermissionDenied("the inbox belongs to an entity")
        limit = max(1, min(limit, MAX_INBOX))
        query = (select(inbox_messages).where(inbox_messages.c.entity_id == principal.entity_id)
                 .order_by(inbox_messages.c.id.desc()).limit(limit))
        with self.store.read() as conn:
            return [{"id": r.message_id, "kind": r.kind, "case_id": r.case_id,
                     "subject": r.subject, "body": r.body,
                     "created_at": r.created_at.isoformat(),
                     "read_at": r.read_at.isoformat() if r.read_at else None}
                    for r in conn.execute(query)]

    def states(self) -> dict[str, int]:
        """How many outbox rows are in each state."""
        with self.store.read() as conn:
            rows = conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state))
            return {state: int(count) for state, count in rows}

    def release_capped(self, conn: Connection, recipient: str) -> int:
        """Put a recipient's capped rows back in the queue (an operator's decision)."""
        return conn.execute(update(outbox).where(outbox.c.recipient == recipient,
                                                 outbox.c.state == "capped")
                            .values(state="pending", next_attempt_at=utcnow())).rowcount or 0
