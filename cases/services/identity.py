"""Entities, analyst accounts and their API tokens.

Tokens are 256-bit random secrets (``pk_`` + 43 url-safe characters), shown once at
creation and stored only as ``HMAC-SHA256(pepper, token)`` plus a 4-character prefix for
display (SECURITY A2, K1, K2). Authentication is a hash look-up followed by
``hmac.compare_digest``; a revoked or expired token fails like an unknown one (A1, A3).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from cases.services import audit
from cases.store import Store
from cases.store.tables import entities, tokens, users
from pukara.core.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound
from pukara.core.schema import Entity, utcnow

TOKEN_PREFIX = "pk_"  # noqa: S105 - a public marker, not a secret
TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 256


class Role(StrEnum):
    """What a principal may do. Entity tokens are reporters; users are center staff."""

    REPORTER = "reporter"
    ANALYST = "analyst"
    COORDINATOR = "coordinator"
    ADMIN = "admin"


STAFF_ROLES = frozenset({Role.ANALYST, Role.COORDINATOR, Role.ADMIN})


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    role: Role
    token_id: int
    entity_id: str | None = None
    user: str | None = None

    @property
    def name(self) -> str:
        """How the audit log names this caller."""
        return self.user if self.user else f"entity:{self.entity_id}"

    @property
    def is_staff(self) -> bool:
        """True for analysts, coordinators and admins of the center."""
        return self.role in STAFF_ROLES

    def actor(self, request_id: str | None = None) -> audit.Actor:
        """This principal as an audit actor."""
        return audit.Actor(self.name, entity_id=self.entity_id, request_id=request_id)


class Identity:
    """Registry of entities and users, issuer and checker of tokens."""

    def __init__(self, store: Store, pepper: str = "") -> None:
        self.store = store
        self._pepper = pepper.encode()

    def token_hash(self, token: str) -> str:
        """The stored form of a token."""
        if self._pepper:
            return hmac.new(self._pepper, token.encode(), hashlib.sha256).hexdigest()
        return hashlib.sha256(token.encode()).hexdigest()

    def add_entity(self, entity: Entity, actor: audit.Actor = audit.SYSTEM) -> Entity:
        """Register a new entity; Conflict if its id exists."""
        now = utcnow()
        doc = entity.model_dump(mode="json")
        try:
            with self.store.write() as conn:
                conn.execute(insert(entities).values(**_entity_row(entity, doc), created_at=now,
                                                     updated_at=now))
                audit.append(conn, actor, "entity.add", "entity", entity.id,
                             entity_id=entity.id, after=doc)
        except IntegrityError:
            raise Conflict(f"entity {entity.id!r} already exists", field="id") from None
        return entity

    def upsert_entities(self, items: Iterable[Entity], actor: audit.Actor = audit.SYSTEM) -> int:
        """Add or replace entities (``entity import``); returns how many."""
        count = 0
        now = utcnow()
        with self.store.write() as conn:
            for entity in items:
                doc = entity.model_dump(mode="json")
                before = conn.execute(select(entities.c.doc).where(entities.c.id == entity.id))
                old = before.scalar()
                if old is None:
                    conn.execute(insert(entities).values(**_entity_row(entity, doc),
                                                         created_at=now, updated_at=now))
                else:
                    conn.execute(update(entities).where(entities.c.id == entity.id)
                                 .values(**_entity_row(entity, doc), updated_at=now))
                audit.append(conn, actor, "entity.import", "entity", entity.id,
                             entity_id=entity.id, before=old, after=doc)
                count += 1
        return count

    def entity(self, entity_id: str) -> Entity:
        """One entity; NotFound if absent."""
        with self.store.read() as conn:
            doc = conn.execute(select(entities.c.doc).where(entities.c.id == entity_id)).scalar()
        if doc is None:
            raise NotFound(f"no entity {entity_id!r}")
        return Entity.model_validate(doc)

    def entities(self) -> list[Entity]:
        """Every entity, by id."""
        with self.store.read() as conn:
            rows = conn.execute(select(entities.c.doc).order_by(entities.c.id)).scalars()
            return [Entity.model_validate(doc) for doc in rows]

    def add_user(self, name: str, role: Role, actor: audit.Actor = audit.SYSTEM) -> None:
        """Create an analyst account."""
        if role not in STAFF_ROLES:
            raise InvalidInput(f"role must be one of {', '.join(sorted(STAFF_ROLES))}",
                               field="role")
        try:
            with self.store.write() as conn:
                conn.execute(insert(users).values(name=name, role=role.value, disabled=False,
                                                  created_at=utcnow()))
                audit.append(conn, actor, "user.add", "user", name, details={"role": role.value})
        except IntegrityError:
            raise Conflict(f"user {name!r} already exists", field="name") from None

    def users(self) -> list[dict[str, Any]]:
        """Every user with role and creation time (never tokens)."""
        with self.store.read() as conn:
            rows = conn.execute(select(users.c.name, users.c.role, users.c.disabled,
                                       users.c.created_at).order_by(users.c.name))
            return [dict(r._mapping) for r in rows]

    def issue_entity_token(self, entity_id: str, *, ttl: timedelta | None = None,
                           actor: audit.Actor = audit.SYSTEM) -> str:
        """A new token for an entity, returned once."""
        self.entity(entity_id)
        return self._issue(entity_id=entity_id, user_id=None, ttl=ttl, actor=actor)

    def issue_user_token(self, name: str, *, ttl: timedelta | None = None,
                         actor: audit.Actor = audit.SYSTEM) -> str:
        """A new token for an analyst account, returned once."""
        with self.store.read() as conn:
            user_id = conn.execute(select(users.c.id).where(users.c.name == name)).scalar()
        if user_id is None:
            raise NotFound(f"no user {name!r}")
        return self._issue(entity_id=None, user_id=user_id, ttl=ttl, actor=actor)

    def _issue(self, *, entity_id: str | None, user_id: int | None,
               ttl: timedelta | None, actor: audit.Actor) -> str:
        token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        now = utcnow()
        with self.store.write() as conn:
            inserted = conn.execute(insert(tokens).values(
                hash=self.token_hash(token), prefix=token[len(TOKEN_PREFIX):][:4],
                entity_id=entity_id, user_id=user_id, created_at=now,
                expires_at=now + ttl if ttl else None,
            )).inserted_primary_key
            token_id = inserted[0] if inserted else None
            audit.append(conn, actor, "token.create", "token", str(token_id),
                         entity_id=entity_id, details={"user_id": user_id})
        return token

    def revoke(self, *, entity_id: str | None = None, user: str | None = None,
               actor: audit.Actor = audit.SYSTEM) -> int:
        """Revoke every live token of an entity or a user; returns how many."""
        now = utcnow()
        with self.store.write() as conn:
            query = update(tokens).where(tokens.c.revoked_at.is_(None))
            if entity_id is not None:
                query = query.where(tokens.c.entity_id == entity_id)
            elif user is not None:
                user_id = conn.execute(select(users.c.id).where(users.c.name == user)).scalar()
                if user_id is None:
                    raise NotFound(f"no user {user!r}")
                query = query.where(tokens.c.user_id == user_id)
            else:
                raise InvalidInput("revoke needs an entity or a user")
            count = conn.execute(query.values(revoked_at=now)).rowcount
            audit.append(conn, actor, "token.revoke", "token", None, entity_id=entity_id,
                         details={"user": user, "count": count})
        return count

    def authenticate(self, token: Any, conn: Connection | None = None) -> Principal:
        """The principal of a bearer token, or AuthenticationFailed (always the same message)."""
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or not (
            20 < len(token) <= MAX_TOKEN_LENGTH
        ):
            raise AuthenticationFailed("invalid or missing bearer token")
        wanted = self.token_hash(token)
        if conn is None:
            with self.store.read() as own:
                return self._lookup(own, wanted)
        return self._lookup(conn, wanted)

    def _lookup(self, conn: Connection, wanted: str) -> Principal:
        row = conn.execute(
            select(tokens.c.id, tokens.c.hash, tokens.c.entity_id, tokens.c.expires_at,
                   tokens.c.revoked_at, users.c.name, users.c.role, users.c.disabled)
            .select_from(tokens.outerjoin(users, tokens.c.user_id == users.c.id))
            .where(tokens.c.hash == wanted)
        ).first()
        if row is None or not hmac.compare_digest(row.hash, wanted):
            raise AuthenticationFailed("invalid or missing bearer token")
        if row.revoked_at is not None or _expired(row.expires_at) or row.disabled:
            raise AuthenticationFailed("invalid or missing bearer token")
        if row.entity_id is not None:
            return Principal(Role.REPORTER, row.id, entity_id=row.entity_id)
        return Principal(Role(row.role), row.id, user=row.name)


def _expired(expires_at: datetime | None) -> bool:
    return expires_at is not None and expires_at <= utcnow()


def _entity_row(entity: Entity, doc: dict[str, Any]) -> dict[str, Any]:
    return {"id": entity.id, "name": entity.name, "sector": entity.sector,
            "criticality": entity.criticality, "language": entity.language, "doc": doc}
