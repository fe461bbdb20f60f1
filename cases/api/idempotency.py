"""``Idempotency-Key`` (draft-ietf-httpapi-idempotency-key-header) for every POST.

The key row, the business change and the stored response are written in ONE write
transaction, so a crash before commit leaves nothing (the retry is processed once) and a
crash after commit leaves the stored answer (the retry replays it) (H1, H6). Keys are scoped
to the principal — ``entity:<id>`` for entity tokens, ``user:<name>`` for staff — so another
entity's identical key is independent (H4). The same key with a different request (hash
of method, path, query and body) is refused with 422 (H2). Concurrent duplicates wait on the
write lock (SQLite ``BEGIN IMMEDIATE``) or the unique key (PostgreSQL), then find the stored
response and replay it (H3).

TTL: a key is remembered for ``settings.api.idempotency_ttl_hours`` (72 h by default) from its
first use. A retry inside the TTL replays the original status and body with
``Idempotent-Replayed: true``. After the TTL the key is forgotten and the request is processed
as new; an incident that carries its ``external_id`` is still refused by the store's unique
(entity, external_id) constraint, so a late retry never silently duplicates it (H7).

Fault hooks for the crash tests: ``PUKARA_FAULT=after_write_before_commit`` or
``after_commit_before_response`` raises :class:`InjectedFault` at that point; a ``:exit``
suffix ends the process instead (``os._exit``), as a kill would.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from cases.api.problems import Problem, field_error
from cases.services.identity import Principal
from cases.store import Store
from cases.store.tables import idempotency_keys
from pukara.core.errors import Conflict, IdempotencyMismatch
from pukara.core.schema import utcnow

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
FAULT_POINTS = ("after_write_before_commit", "after_commit_before_response")
_ATTEMPTS = 3

Work = Callable[[Connection], tuple[int, Any]]


class InjectedFault(RuntimeError):
    """Raised by a fault hook in a test build."""


class _KeyTaken(Exception):
    """Another transaction inserted the same key first (PostgreSQL)."""


@dataclass(frozen=True)
class Outcome:
    """The answer to send: status, JSON body bytes, and whether it is a replay."""

    status: int
    body: bytes
    replayed: bool = False


def parse_key(value: str | None) -> str | None:
    """The key of an ``Idempotency-Key`` header (quotes allowed), or 400 if malformed."""
    if value is None:
        return None
    key = value.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key or len(key) > MAX_KEY_LENGTH or not all(33 <= ord(c) <= 126 for c in key):
        raise Problem(400, f"{HEADER} must be 1 to {MAX_KEY_LENGTH} visible ASCII characters",
                      errors=[field_error(HEADER, "malformed key", ["header", HEADER])])
    return key


def request_fingerprint(method: str, path: str, query: str, body_digest: str) -> str:
    """What "the same request" means: a hash of method, path, query and body digest."""
    text = "\n".join((method.upper(), path, query, body_digest))
    return hashlib.sha256(text.encode()).hexdigest()


def principal_scope(principal: Principal) -> str:
    """The namespace of a principal's keys."""
    return f"entity:{principal.entity_id}" if principal.entity_id else f"user:{principal.user}"


class FaultHooks:
    """Named crash points, armed from ``PUKARA_FAULT`` (comma-separated) in test builds."""

    def __init__(self, spec: str = "") -> None:
        self.armed: dict[str, bool] = {}
        for item in filter(None, (s.strip() for s in spec.split(","))):
            point, _, mode = item.partition(":")
            if point in FAULT_POINTS:
                self.armed[point] = mode == "exit"

    @classmethod
    def from_env(cls) -> FaultHooks:
        """Hooks armed by the ``PUKARA_FAULT`` variable (none when unset)."""
        return cls(os.environ.get("PUKARA_FAULT", ""))

    def hit(self, point: str) -> None:
        """Crash here if ``point`` is armed."""
        if point in self.armed:
            if self.armed[point]:
                os._exit(70)
            raise InjectedFault(point)


class Idempotency:
    """Runs a write once per (principal, key) and remembers its answer."""

    def __init__(self, store: Store, *, ttl_hours: int, faults: FaultHooks | None = None,
                 on_replay: Callable[[], None] | None = None) -> None:
        self.store = store
        self.ttl = timedelta(hours=ttl_hours)
        self.faults = faults or FaultHooks()
        self._on_replay = on_replay or (lambda: None)

    def run(self, principal: Principal, key: str | None, fingerprint: str, work: Work
            ) -> Outcome:
        """Run ``work(conn)`` in a write transaction, exactly once for a given key."""
        if key is None:
            with self.store.write() as conn:
                status, document = work(conn)
                body = orjson.dumps(document)
                self.faults.hit("after_write_before_commit")
            self.faults.hit("after_commit_before_response")
            return Outcome(status, body)
        scope = principal_scope(principal)
        for _ in range(_ATTEMPTS):
            try:
                outcome = self._once(conn_scope=scope, key=key, fingerprint=fingerprint,
                                     work=work)
            except _KeyTaken:
                continue
            if outcome.replayed:
                self._on_replay()
            else:
                self.faults.hit("after_commit_before_response")
            return outcome
        raise Conflict("the idempotency key is in use by a request in flight; retry",
                       field=HEADER)

    def _once(self, *, conn_scope: str, key: str, fingerprint: str, work: Work) -> Outcome:
        with self.store.write() as conn:
            stored = self._lookup(conn, conn_scope, key, fingerprint)
            if stored is not None:
                return stored
            now = utcnow()
            try:
                with conn.begin_nested():
                    conn.execute(insert(idempotency_keys).values(
                        principal=conn_scope, key=key, request_hash=fingerprint,
                        state="running", created_at=now, expires_at=now + self.ttl))
            except IntegrityError:
                raise _KeyTaken from None
            status, document = work(conn)
            body = orjson.dumps(document)
            conn.execute(update(idempotency_keys)
                         .where(idempotency_keys.c.principal == conn_scope,
                                idempotency_keys.c.key == key)
                         .values(state="done", status_code=status, response=body))
            self.faults.hit("after_write_before_commit")
        return Outcome(status, body)

    def _lookup(self, conn: Connection, scope: str, key: str, fingerprint: str
                ) -> Outcome | None:
        row = conn.execute(select(idempotency_keys).where(
            idempotency_keys.c.principal == scope, idempotency_keys.c.key == key)).first()
        if row is None:
            return None
        if row.expires_at <= utcnow():
            conn.execute(delete(idempotency_keys).where(
                idempotency_keys.c.principal == scope, idempotency_keys.c.key == key))
            return None
        if row.request_hash != fingerprint:
            raise IdempotencyMismatch(
                "this Idempotency-Key was used with a different request", field=HEADER)
        if row.state != "done" or row.status_code is None:
            raise Conflict("the request with this Idempotency-Key is still running",
                           field=HEADER)
        return Outcome(int(row.status_code), bytes(row.response or b"null"), replayed=True)

    def sweep(self) -> int:
        """Delete keys past their TTL; returns how many."""
        with self.store.write() as conn:
            result = conn.execute(delete(idempotency_keys).where(
                idempotency_keys.c.expires_at <= utcnow()))
        return int(result.rowcount or 0)
