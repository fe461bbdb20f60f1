"""A case's timeline and comments.

Every change to a case writes an automatic entry (``kind = auto``) in the same transaction;
analysts add their own entries (``kind = note``) with the time the event happened, which may
be before the case existed (the intrusion started on the 3rd, found on the 9th). The timeline
is ordered by event time, then by recording order. Comments are discussion, kept apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from cases.services import audit
from cases.services.case_models import find_case, iso
from cases.store import Store
from cases.store.tables_cases import case_comments, case_timeline
from pukara.core.errors import InvalidInput
from pukara.core.schema import MAX_TEXT, utcnow


def record(
    conn: Connection,
    case_id: str,
    action: str,
    actor: audit.Actor,
    text: str,
    *,
    details: dict[str, Any] | None = None,
    event_at: datetime | None = None,
    kind: str = "auto",
) -> None:
    """Append one timeline entry inside the caller's transaction."""
    now = utcnow()
    conn.execute(insert(case_timeline).values(
        case_id=case_id, event_at=event_at or now, recorded_at=now, kind=kind, action=action,
        actor=actor.name, text=text, details=details or {}))


def entries(conn: Connection, case_id: str) -> list[dict[str, Any]]:
    """The timeline of a case, oldest event first."""
    query = (select(case_timeline).where(case_timeline.c.case_id == case_id)
             .order_by(case_timeline.c.event_at, case_timeline.c.id))
    return [{"id": r.id, "event_at": iso(r.event_at), "recorded_at": iso(r.recorded_at),
             "kind": r.kind, "action": r.action, "actor": r.actor, "text": r.text,
             "details": r.details} for r in conn.execute(query)]


def comments(conn: Connection, case_id: str) -> list[dict[str, Any]]:
    """The comments of a case, oldest first."""
    query = (select(case_comments).where(case_comments.c.case_id == case_id)
             .order_by(case_comments.c.id))
    return [{"id": r.id, "author": r.author, "text": r.text, "created_at": iso(r.created_at)}
            for r in conn.execute(query)]


def _text(text: str) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise InvalidInput("the text is empty", field="text")
    if len(cleaned) > MAX_TEXT:
        raise InvalidInput(f"the text is longer than {MAX_TEXT} characters", field="text")
    return cleaned


class TimelineService:
    """Analyst notes (timeline entries with their own event time) and comments."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def note(self, case_ref: str, text: str, actor: audit.Actor, *,
             event_at: datetime | None = None) -> dict[str, Any]:
        """Add an analyst entry; ``event_at`` is when it happened (default now)."""
        if event_at is not None and event_at.tzinfo is None:
            raise InvalidInput("the event time needs a time zone (e.g. Z)", field="event_at")
        body = _text(text)
        when = event_at or utcnow()
        with self.store.write() as conn:
            row = find_case(conn, case_ref)
            record(conn, row["id"], "note", actor, body, event_at=when, kind="note")
            audit.append(conn, actor, "case.note", "case", row["id"],
                         after={"text": body, "event_at": iso(when)})
        return {"case_id": row["id"], "kind": "note", "event_at": iso(when), "text": body,
                "actor": actor.name}

    def comment(self, case_ref: str, text: str, actor: audit.Actor) -> dict[str, Any]:
        """Add a comment."""
        body = _text(text)
        with self.store.write() as conn:
            row = find_case(conn, case_ref)
            now = utcnow()
            comment_id = conn.execute(insert(case_comments).values(
                case_id=row["id"], author=actor.name, text=body, created_at=now)
                .returning(case_comments.c.id)).scalar_one()
            audit.append(conn, actor, "case.comment", "case", row["id"], after={"text": body})
        return {"id": comment_id, "case_id": row["id"], "author": actor.name, "text": body,
                "created_at": iso(now)}

    def timeline(self, case_ref: str) -> list[dict[str, Any]]:
        """The timeline of a case."""
        with self.store.read() as conn:
            return entries(conn, find_case(conn, case_ref)["id"])
