"""Tamper-evident audit log: a hash chain appended in the business transaction.

``h_i = SHA-256(h_{i-1} ‖ canonical(entry_i))`` with ``h_0`` = 64 zeros. Appends take the
single ``audit_head`` row (locked: ``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE`` on
PostgreSQL), so concurrent writers form one linear chain, and the entry commits or rolls
back with the change it records (SECURITY J1, J2, J4, J5). UPDATE and DELETE on the table are
refused by triggers (J6). Details never hold secrets: callers pass identifiers and hashes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select, update

from cases.store.tables import audit_head, audit_log
from pukara.core.errors import AuditChainBroken, StoreError
from pukara.core.schema import utcnow

GENESIS = "0" * 64
_FORBIDDEN_KEYS = ("token", "password", "secret", "key", "authorization")


def canonical(entry: dict[str, Any]) -> bytes:
    """The canonical bytes of an entry: sorted keys, UTC ISO times, no whitespace."""
    return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z)


def digest(document: Any) -> str:
    """SHA-256 of a document's canonical JSON (for before/after hashes)."""
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def chain_hash(previous: str, entry: dict[str, Any]) -> str:
    """``H(previous ‖ canonical(entry))``."""
    return hashlib.sha256(previous.encode("ascii") + canonical(entry)).hexdigest()


@dataclass(frozen=True)
class Actor:
    """Who did it: a user name or ``entity:<id>``, and the request it came with."""

    name: str
    entity_id: str | None = None
    request_id: str | None = None


SYSTEM = Actor("system")


def ensure_head(conn: Connection) -> None:
    """Create the chain head (genesis) if the store has none; run once at store start."""
    if conn.execute(select(audit_head.c.id)).first() is None:
        conn.execute(insert(audit_head).values(id=1, seq=0, hash=GENESIS))


def _check_details(details: dict[str, Any]) -> None:
    for name in details:
        lowered = name.lower()
        if any(word in lowered for word in _FORBIDDEN_KEYS) and not lowered.endswith("_id"):
            raise ValueError(f"audit details must not carry secrets (field {name!r})")


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    at = row["at"]
    if isinstance(at, datetime):
        at = at.isoformat()
    return {
        "seq": row["seq"],
        "at": at,
        "actor": row["actor"],
        "entity_id": row["entity_id"],
        "action": row["action"],
        "object_type": row["object_type"],
        "object_id": row["object_id"],
        "request_id": row["request_id"],
        "before_hash": row["before_hash"],
        "after_hash": row["after_hash"],
        "details": row["details"],
    }


def append(
    conn: Connection,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str | None = None,
    *,
    entity_id: str | None = None,
    before: Any = None,
    after: Any = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Append one entry inside the caller's transaction; returns its sequence number."""
    details = details or {}
    _check_details(details)
    head_query = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
    if conn.dialect.name != "sqlite":
        head_query = head_query.with_for_update()
    head = conn.execute(head_query).first()
    if head is None:
        raise StoreError("the audit chain head is missing: open the store with Store.open()")
    seq, previous = int(head.seq) + 1, str(head.hash)
    row = {
        "seq": seq,
        "at": utcnow(),
        "actor": actor.name,
        "entity_id": entity_id if entity_id is not None else actor.entity_id,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "request_id": actor.request_id,
        "before_hash": None if before is None else digest(before),
        "after_hash": None if after is None else digest(after),
        "details": details,
    }
    entry_hash = chain_hash(previous, _entry(row))
    conn.execute(insert(audit_log).values(**row, prev_hash=previous, hash=entry_hash))
    conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=entry_hash))
    return seq


def _stored_entry(row: Any) -> dict[str, Any]:
    return _entry(dict(row._mapping))


def verify(conn: Connection) -> int:
    """Check the whole chain; returns the number of entries or raises AuditChainBroken."""
    previous = GENESIS
    expected_seq = 1
    for row in conn.execute(select(audit_log).order_by(audit_log.c.seq)):
        if row.seq != expected_seq:
            raise AuditChainBroken(
                f"audit entry {expected_seq} is missing (found {row.seq} next)", index=expected_seq
            )
        if row.prev_hash != previous or chain_hash(previous, _stored_entry(row)) != row.hash:
            raise AuditChainBroken(f"audit entry {row.seq} does not verify", index=row.seq)
        previous = row.hash
        expected_seq += 1
    head = conn.execute(select(audit_head.c.seq, audit_head.c.hash)).first()
    count = expected_seq - 1
    if head is not None and (head.seq != count or head.hash != previous):
        raise AuditChainBroken(
            f"audit chain ends at entry {count} but the head records {head.seq}: "
            "entries were removed from the tail",
            index=count + 1,
        )
    return count
