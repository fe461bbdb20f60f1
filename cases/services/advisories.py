"""Advisories: what the CNSD tells its constituency (title, summary, indicators,
recommendations), published by analysts and read by entities through
``GET /api/v1/advisories``.

An advisory is TLP:CLEAR or TLP:GREEN for the community, optionally aimed at sectors (then
only entities of those sectors list it) or at named entities (then only they do). TLP:AMBER
is allowed only addressed: the named entities, or every entity of the named sectors at the
time of publishing, each with its own recipient row and read receipt. TLP:AMBER+STRICT and
TLP:RED are never advisories. Publishing and every AMBER read are audited (SECURITY J1).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Connection, RowMapping, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cases.services import audit
from cases.services.case_models import iso, validated
from cases.services.identity import Principal
from cases.store import Store
from cases.store.tables import entities, sequences
from cases.store.tables_sharing import advisories, advisory_recipients
from pukara.core.errors import InvalidInput, NotFound, PermissionDenied, TLPViolation
from pukara.core.schema import MAX_TEXT, MAX_TITLE, Observable, utcnow
from pukara.core.taxonomy import TLP

COMMUNITY = (TLP.CLEAR, TLP.GREEN)
MAX_LIST = 500


class AdvisoryDraft(BaseModel):
    """An advisory as an analyst writes it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=MAX_TITLE)
    summary: str = Field(min_length=1, max_length=MAX_TEXT)
    tlp: TLP = TLP.GREEN
    indicators: list[Observable] = Field(default_factory=list, max_length=5000)
    recommendations: list[str] = Field(default_factory=list, max_length=100)
    sectors: list[str] = Field(default_factory=list)
    entity_ids: list[str] = Field(default_factory=list)

    @field_validator("tlp", mode="before")
    @classmethod
    def _tlp(cls, value: Any) -> Any:
        return TLP.parse(value) if isinstance(value, str) else value

    @field_validator("sectors")
    @classmethod
    def _sectors(cls, values: list[str]) -> list[str]:
        return sorted({v.strip().lower() for v in values if v.strip()})


def _next_number(conn: Connection, year: int) -> str:
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (dialect_insert(sequences).values(name=f"advisory:{year}", value=1)
                 .on_conflict_do_update(index_elements=[sequences.c.name],
                                        set_={"value": sequences.c.value + 1})
                 .returning(sequences.c.value))
    return f"ADV-{year}-{conn.execute(statement).scalar_one():04d}"


def _recipients(conn: Connection, draft: AdvisoryDraft) -> list[str]:
    """Named entities (all must exist) plus, for AMBER, every entity of the named sectors."""
    named = set(draft.entity_ids)
    known = set(conn.execute(select(entities.c.id).where(entities.c.id.in_(named))).scalars())
    if named - known:
        raise InvalidInput(f"no entity {sorted(named - known)[0]!r}", field="entity_ids")
    if draft.tlp is TLP.AMBER and draft.sectors:
        known |= set(conn.execute(select(entities.c.id).where(
            entities.c.sector.in_(draft.sectors))).scalars())
    return sorted(known)


def _check_tlp(draft: AdvisoryDraft) -> None:
    if draft.tlp in (TLP.RED, TLP.AMBER_STRICT):
        raise TLPViolation(f"TLP:{draft.tlp.value.upper()} is never published as an advisory: "
                           "it stays with its originating entity (SECURITY §3)", field="tlp")
    if draft.tlp is TLP.AMBER and not (draft.sectors or draft.entity_ids):
        raise TLPViolation("a TLP:AMBER advisory must be addressed to named entities or "
                           "sectors (each recipient tracked); only TLP:CLEAR and TLP:GREEN "
                           "go to the whole community", field="tlp")


PublishHook = Callable[[Connection, dict[str, Any], list[str]], None]


class AdvisoryService:
    """Publishing advisories and listing them for a principal."""

    def __init__(self, store: Store, on_published: PublishHook | None = None) -> None:
        """``on_published(conn, view, entity_ids)`` runs in the publishing transaction (the
        composition root queues the "advisory published" messages there)."""
        self.store = store
        self.on_published = on_published

    def publish(self, data: Mapping[str, Any] | AdvisoryDraft, actor: audit.Actor, *,
                principal: Principal | None = None) -> dict[str, Any]:
        """Publish an advisory (staff only); returns its staff view with recipients."""
        if principal is not None and not principal.is_staff:
            raise PermissionDenied("advisories are published by center staff")
        draft = data if isinstance(data, AdvisoryDraft) else validated(AdvisoryDraft, data)
        _check_tlp(draft)
        now = utcnow()
        advisory_id = str(uuid.uuid4())
        with self.store.write() as conn:
            recipients = _recipients(conn, draft)
            if draft.tlp is TLP.AMBER and not recipients:
                raise InvalidInput("no entity is registered in the named sectors",
                                   field="sectors")
            conn.execute(insert(advisories).values(
                id=advisory_id, number=_next_number(conn, now.year), title=draft.title,
                summary=draft.summary, tlp=draft.tlp.value,
                indicators=[o.model_dump(mode="json") for o in draft.indicators],
                recommendations=draft.recommendations, sectors=draft.sectors,
                addressed=bool(recipients), created_by=actor.name, published_at=now))
            if recipients:
                conn.execute(insert(advisory_recipients), [
                    {"advisory_id": advisory_id, "entity_id": e, "addressed": True,
                     "read_at": None} for e in recipients])
            audit.append(conn, actor, "advisory.publish", "advisory", advisory_id,
                         details={"tlp": draft.tlp.value, "sectors": draft.sectors,
                                  "recipients": recipients[:1000]})
            view = self._staff_view(conn, advisory_id)
            if self.on_published is not None:
                audience = recipients or list(conn.execute(select(entities.c.id)).scalars())
                self.on_published(conn, view, audience)
            return view

    def list_for(self, principal: Principal | None = None, *,
                 limit: int = 100) -> list[dict[str, Any]]:
        """Advisories ``principal`` may read, newest first (None or staff: all)."""
        if not 1 <= limit <= MAX_LIST:
            raise InvalidInput(f"limit must be 1..{MAX_LIST}", field="limit")
        query = select(advisories).order_by(advisories.c.published_at.desc(),
                                            advisories.c.number.desc())
        with self.store.read() as conn:
            if principal is None or principal.is_staff:
                rows = list(conn.execute(query.limit(limit)).mappings())
                return [self._staff_view(conn, r["id"]) for r in rows]
            entity_id = str(principal.entity_id)
            receipts = self._receipts_of(conn, entity_id)
            sector = conn.execute(select(entities.c.sector).where(
                entities.c.id == entity_id)).scalar()
            visible = [r for r in conn.execute(query).mappings()
                       if _visible(r, entity_id, sector, receipts)]
            return [_entity_view(r, receipts.get(r["id"])) for r in visible[:limit]]

    def read(self, principal: Principal, advisory_id: str) -> dict[str, Any]:
        """One advisory for an entity, recording its read receipt (NotFound if not its)."""
        entity_id = str(principal.entity_id)
        with self.store.write() as conn:
            row = conn.execute(select(advisories).where(advisories.c.id == advisory_id)
                               ).mappings().first()
            receipts = self._receipts_of(conn, entity_id)
            sector = conn.execute(select(entities.c.sector).where(
                entities.c.id == entity_id)).scalar()
            if row is None or not _visible(row, entity_id, sector, receipts):
                raise NotFound(f"no advisory {advisory_id}")
            now = utcnow()
            first = (receipts.get(advisory_id) or {}).get("read_at") or now
            self._mark_read(conn, advisory_id, entity_id, advisory_id in receipts, now)
            if row["tlp"] == TLP.AMBER.value:
                audit.append(conn, principal.actor(), "advisory.read", "advisory", advisory_id,
                             entity_id=entity_id, details={"tlp": row["tlp"]})
            return _entity_view(row, {"read_at": first})

    @staticmethod
    def _mark_read(conn: Connection, advisory_id: str, entity_id: str, known: bool,
                   now: Any) -> None:
        if known:
            conn.execute(update(advisory_recipients).where(
                advisory_recipients.c.advisory_id == advisory_id,
                advisory_recipients.c.entity_id == entity_id,
                advisory_recipients.c.read_at.is_(None)).values(read_at=now))
        else:
            conn.execute(insert(advisory_recipients).values(
                advisory_id=advisory_id, entity_id=entity_id, addressed=False, read_at=now))

    @staticmethod
    def _receipts_of(conn: Connection, entity_id: str) -> dict[str, dict[str, Any]]:
        rows = conn.execute(select(advisory_recipients).where(
            advisory_recipients.c.entity_id == entity_id)).mappings()
        return {r["advisory_id"]: dict(r) for r in rows}

    def _staff_view(self, conn: Connection, advisory_id: str) -> dict[str, Any]:
        row = conn.execute(select(advisories).where(advisories.c.id == advisory_id)
                           ).mappings().one()
        recipients = conn.execute(select(advisory_recipients).where(
            advisory_recipients.c.advisory_id == advisory_id).order_by(
            advisory_recipients.c.entity_id)).mappings()
        view = _entity_view(row, None)
        view.pop("read_at")
        view.update(created_by=row["created_by"], addressed=row["addressed"], recipients=[
            {"entity_id": r["entity_id"], "addressed": r["addressed"],
             "read_at": iso(r["read_at"])} for r in recipients])
        return view


def _visible(row: RowMapping, entity_id: str, sector: str | None,
             receipts: Mapping[str, Mapping[str, Any]]) -> bool:
    """Addressed to it; or a community advisory for everyone or for its sector."""
    receipt = receipts.get(row["id"])
    if row["addressed"]:
        return receipt is not None and bool(receipt["addressed"])
    if TLP(row["tlp"]) not in COMMUNITY:
        return False
    return not row["sectors"] or sector in row["sectors"]


def _entity_view(row: RowMapping, receipt: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"id": row["id"], "number": row["number"], "title": row["title"],
            "summary": row["summary"], "tlp": row["tlp"], "indicators": row["indicators"],
            "recommendations": row["recommendations"], "sectors": row["sectors"],
            "published_at": iso(row["published_at"]),
            "read_at": iso(receipt["read_at"]) if receipt else None}


__all__ = ["AdvisoryDraft", "AdvisoryService"]
