"""Exercise participant tokens, and how the server tags their submissions with the run.

The entity API forbids ``exercise_id`` in a body (``cases.api.models.SERVER_OWNED``), so an
exercise marks its participants' reports on the server side: each participant gets a token
issued for this run only (recorded in ``exercise_tokens``), and
:class:`ExerciseTaggingIncidents` — handed to ``cases.api.create_app`` in place of the incident
service by the composition root — sets ``report.exercise_id`` for any submission made with
such a token. Tokens are revoked when the run ends or is purged.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, insert, select, update

from cases.services.identity import Identity, Principal
from cases.store import Store
from cases.store.tables import tokens
from playbooks.exercises.tables import exercise_tokens
from pukara.core.schema import IncidentReport, utcnow

TOKEN_TTL = timedelta(days=7)


class Submitter(Protocol):
    """``IncidentService.submit`` (or the case-opening wrapper around it)."""

    def submit(self, conn: Connection, principal: Principal, report: IncidentReport, *,
               request_id: str | None = None) -> dict[str, Any]:
        """Store one incident report inside ``conn``'s transaction."""
        ...


def issue_tokens(identity: Identity, store: Store, exercise_id: str,
                 entity_ids: list[str]) -> dict[str, str]:
    """A fresh token per participant for this run (returned once), recorded as exercise tokens."""
    issued: dict[str, str] = {}
    for entity_id in entity_ids:
        token = identity.issue_entity_token(entity_id, ttl=TOKEN_TTL)
        with store.write() as conn:
            token_id = conn.execute(select(tokens.c.id).where(
                tokens.c.hash == identity.token_hash(token))).scalar_one()
            conn.execute(insert(exercise_tokens).values(token_id=token_id,
                                                        exercise_id=exercise_id,
                                                        entity_id=entity_id))
        issued[entity_id] = token
    return issued


def revoke_tokens(conn: Connection, exercise_id: str) -> int:
    """Revoke every token issued for a run; returns how many were live."""
    ids = select(exercise_tokens.c.token_id).where(exercise_tokens.c.exercise_id == exercise_id)
    return conn.execute(update(tokens).where(tokens.c.id.in_(ids),
                                             tokens.c.revoked_at.is_(None))
                        .values(revoked_at=utcnow())).rowcount


def exercise_of(conn: Connection, principal: Principal) -> str | None:
    """The run a principal's token was issued for, if it is an exercise token."""
    if principal.entity_id is None:
        return None
    found = conn.execute(select(exercise_tokens.c.exercise_id).where(
        exercise_tokens.c.token_id == principal.token_id)).scalar()
    return str(found) if found is not None else None


class ExerciseTaggingIncidents:
    """The incident service as the API sees it, with exercise tokens' reports tagged."""

    def __init__(self, incidents: Any, submitter: Submitter) -> None:
        self._incidents = incidents
        self._submitter = submitter

    def submit(self, conn: Connection, principal: Principal, report: IncidentReport, *,
               request_id: str | None = None) -> dict[str, Any]:
        """Tag the report with the token's run (if any), then submit and open/join a case."""
        exercise_id = exercise_of(conn, principal)
        if exercise_id is not None:
            report.exercise_id = exercise_id
        return self._submitter.submit(conn, principal, report, request_id=request_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._incidents, name)
