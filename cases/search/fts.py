"""Full-text and field search on the embedded store: SQLite FTS5, visibility on the server.

``alerts_fts`` indexes each alert's title, observable values, signature and classification;
``cases_fts`` each case's title, description and observable values. Both are FTS5
*external-content* tables over views of the store's own tables (nothing is stored twice),
set up by :func:`install_fts` (idempotent; a newly created index is rebuilt from the rows
already there). Cases are kept in sync by triggers: a case's observables live in another
table, so they delete the indexed row *before* a change and insert the new one *after* it.
New alerts are indexed *lagging*, off the write path (:mod:`cases.search.fts_indexer`): a
search first catches up the alerts stored since the last pass, and a full-text alert query
keeps to the rows the index holds.

Every search is narrowed by the principal first: an entity sees only its own alerts (TLP:RED
ones included: it is their originator) and no cases; staff see everything (the named CNSD
handlers). Text is always matched as quoted FTS5 strings, so ``OR``, ``*`` or ``entity_id:*``
are words, never operators (SECURITY B10). On PostgreSQL the text terms fall back to
``ILIKE`` over the same fields (correct, unindexed; a ``to_tsvector`` GIN index is the way to
scale there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Connection,
    Select,
    and_,
    bindparam,
    exists,
    false,
    func,
    literal_column,
    not_,
    or_,
    select,
    text,
)

from cases.search.fts_indexer import (
    ALERT_COLUMNS,
    ALERT_SOURCE_VIEW,
    INDEXED_ONLY,
    catch_up,
    install_indexer,
    mark_all_indexed,
)
from cases.search.query import Filter, SearchQuery, Text, allowed_levels, parse
from cases.services.alerts import summary
from cases.services.case_models import iso
from cases.services.identity import Principal
from cases.store import Store
from cases.store.tables import alerts
from cases.store.tables_cases import case_entities, case_observables, cases
from pukara.core.errors import InvalidInput
from pukara.core.taxonomy import TLP, Severity

MAX_RESULTS = 1000

_CASE_SOURCE = (
    "CREATE VIEW IF NOT EXISTS cases_fts_source AS SELECT c.rowid AS rid, c.title, "
    "c.description, (SELECT group_concat(value, ' ') FROM (SELECT o.value FROM "
    "case_observables AS o WHERE o.case_id = c.id ORDER BY o.id)) AS observables FROM cases AS c"
)
_CASE_DELETE = ("INSERT INTO cases_fts(cases_fts, rowid, title, description, observables) "
                "SELECT 'delete', rid, title, description, observables FROM cases_fts_source "
                "WHERE rid IN (SELECT rowid FROM cases WHERE id IN ({ids}))")
_CASE_INSERT = ("INSERT INTO cases_fts(rowid, title, description, observables) SELECT rid, "
                "title, description, observables FROM cases_fts_source "
                "WHERE rid IN (SELECT rowid FROM cases WHERE id IN ({ids}))")


def _trigger(name: str, when: str, body: Sequence[str]) -> str:
    return f"CREATE TRIGGER IF NOT EXISTS {name} {when} BEGIN {'; '.join(body)}; END"


def _case_statements() -> list[str]:
    both = "old.case_id, new.case_id"
    return [
        _CASE_SOURCE,
        _trigger("cases_fts_ai", "AFTER INSERT ON cases",
                 [_CASE_INSERT.format(ids="new.id")]),
        _trigger("cases_fts_bu", "BEFORE UPDATE OF title, description ON cases",
                 [_CASE_DELETE.format(ids="old.id")]),
        _trigger("cases_fts_au", "AFTER UPDATE OF title, description ON cases",
                 [_CASE_INSERT.format(ids="new.id")]),
        _trigger("cases_fts_bd", "BEFORE DELETE ON cases", [_CASE_DELETE.format(ids="old.id")]),
        _trigger("case_obs_fts_bi", "BEFORE INSERT ON case_observables",
                 [_CASE_DELETE.format(ids="new.case_id")]),
        _trigger("case_obs_fts_ai", "AFTER INSERT ON case_observables",
                 [_CASE_INSERT.format(ids="new.case_id")]),
        _trigger("case_obs_fts_bd", "BEFORE DELETE ON case_observables",
                 [_CASE_DELETE.format(ids="old.case_id")]),
        _trigger("case_obs_fts_ad", "AFTER DELETE ON case_observables",
                 [_CASE_INSERT.format(ids="old.case_id")]),
        _trigger("case_obs_fts_bu", "BEFORE UPDATE OF case_id, value ON case_observables",
                 [_CASE_DELETE.format(ids=both)]),
        _trigger("case_obs_fts_au", "AFTER UPDATE OF case_id, value ON case_observables",
                 [_CASE_INSERT.format(ids=both)]),
    ]


def install_fts(conn: Connection) -> bool:
    """Create the FTS5 tables, the case triggers and the alert indexer's watermark and
    triggers (SQLite; idempotent). True if the index was (re)built.

    Call it from the store's migrate step or the wiring, inside a write transaction. A store
    indexed by the old alert insert trigger is upgraded without a rebuild.
    """
    if conn.dialect.name != "sqlite":
        return False
    present = conn.exec_driver_sql(
        "SELECT count(*) FROM sqlite_master WHERE name IN ('alerts_fts', 'cases_fts')"
    ).scalar_one()
    conn.exec_driver_sql(
        "CREATE VIRTUAL TABLE IF NOT EXISTS alerts_fts USING fts5(title, observables, "
        "signature, classification, entity, content='alerts_fts_source', "
        "content_rowid='rid')")
    conn.exec_driver_sql(ALERT_SOURCE_VIEW)
    conn.exec_driver_sql(
        "CREATE VIRTUAL TABLE IF NOT EXISTS cases_fts USING fts5(title, description, "
        "observables, content='cases_fts_source', content_rowid='rid')")
    for statement in _case_statements():
        conn.exec_driver_sql(statement)
    known = install_indexer(conn)
    if present == 2 and known:
        return False
    rebuild_fts(conn)
    return True


def rebuild_fts(conn: Connection) -> None:
    """Re-index every alert and case from the store's rows (the alert watermark moves to
    the newest id). Inside a write transaction, after :func:`install_fts`.

    FTS5's own ``'rebuild'`` refuses a content view that uses ``json_each``, so the index
    is emptied (``'delete-all'``) and filled from the views by plain INSERT … SELECT.
    """
    for table, columns in (("alerts_fts", ALERT_COLUMNS),
                           ("cases_fts", "title, description, observables")):
        conn.exec_driver_sql(f"INSERT INTO {table}({table}) VALUES ('delete-all')")
        conn.exec_driver_sql(f"INSERT INTO {table}(rowid, {columns}) SELECT rid, {columns} "
                             f"FROM {table}_source")
    mark_all_indexed(conn)


def fts_string(term: str) -> str:
    """One FTS5 string literal: always quoted, so nothing in it is an operator."""
    return '"' + term.replace('"', '""') + '"'


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class _Binds:
    """Unique bind-parameter names within one statement."""

    def __init__(self) -> None:
        self.count = 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"


def _negated(condition: ColumnElement[bool], negate: bool) -> ColumnElement[bool]:
    return not_(func.coalesce(condition, false())) if negate else condition


def _classification(column: Any, value: str) -> ColumnElement[bool]:
    condition: ColumnElement[bool]
    if value.endswith("*"):
        prefix = value.rstrip("*")
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        condition = column.like(f"{escaped}%", escape="\\")
    elif "/" not in value:
        condition = column.like(f"{value}/%")
    else:
        condition = column == value
    return condition


def _observable_in_alert(conn: Connection, value: str) -> ColumnElement[bool]:
    if conn.dialect.name == "sqlite":
        items = func.json_each(alerts.c.doc, "$.observables").table_valued("value").alias("j")
        return exists(select(1).select_from(items).where(
            func.json_extract(items.c.value, "$.value") == value))
    return alerts.c.doc.like(f'%"value":"{value}"%')


def _alert_filter(conn: Connection, item: Filter) -> ColumnElement[bool]:
    c = alerts.c
    conditions: dict[str, Any] = {
        "entity": lambda: c.entity_id == item.value,
        "severity": lambda: c.severity.in_(allowed_levels(item, Severity)),
        "tlp": lambda: c.tlp.in_(allowed_levels(item, TLP)),
        "status": lambda: c.status == item.value,
        "class": lambda: _classification(c.classification, item.value),
        "source": lambda: c.source == item.value,
        "observable": lambda: _observable_in_alert(conn, item.value),
        "case": lambda: c.case_id.in_(_case_ids(conn, item.value)),
    }
    return _negated(conditions[item.field](), item.negate)


def _case_ids(conn: Connection, ref: str) -> list[str]:
    """The case a ``case:`` term names, resolved first so the alerts' case index is used."""
    query = select(cases.c.id).where(or_(cases.c.number == ref.upper(), cases.c.id == ref))
    return list(conn.execute(query).scalars())


def _case_filter(item: Filter) -> ColumnElement[bool]:
    c = cases.c
    conditions: dict[str, Any] = {
        "entity": lambda: c.id.in_(select(case_entities.c.case_id).where(
            case_entities.c.entity_id == item.value)),
        "severity": lambda: c.severity.in_(allowed_levels(item, Severity)),
        "tlp": lambda: c.tlp.in_(allowed_levels(item, TLP)),
        "status": lambda: c.status == item.value,
        "class": lambda: _classification(c.classification, item.value),
        "source": false,
        "observable": lambda: c.id.in_(select(case_observables.c.case_id).where(
            case_observables.c.value == item.value)),
        "case": lambda: or_(c.number == item.value.upper(), c.id == item.value),
    }
    return _negated(conditions[item.field](), item.negate)


def _match_ids(table: str, rowid: str, expression: str, binds: _Binds, *,
               negate: bool) -> ColumnElement[bool]:
    name = binds.name("m")
    sub = text(f"SELECT rowid FROM {table} WHERE {table} MATCH :{name}").bindparams(
        bindparam(name, expression)).columns(literal_column("rowid"))
    column: ColumnElement[Any] = literal_column(rowid)
    return column.not_in(sub) if negate else column.in_(sub)


def _fts_text(table: str, rowid: str, terms: Sequence[Text], extra: Sequence[str],
              binds: _Binds, *, narrow: str = "") -> list[ColumnElement[bool]]:
    """MATCH conditions for the text terms; ``narrow`` (an entity column filter) only
    shortens the candidate lists, the SQL filter on the row stays the authority."""
    positives = [fts_string(t.text) for t in terms if not t.negate] + list(extra)
    negatives = [fts_string(t.text) for t in terms if t.negate]
    found = []
    if positives:
        expression = " ".join([*positives, narrow] if narrow else positives)
        found.append(_match_ids(table, rowid, expression, binds, negate=False))
    if negatives:
        expression = " OR ".join(negatives)
        if narrow:
            expression = f"{narrow} AND ({expression})"
        found.append(_match_ids(table, rowid, expression, binds, negate=True))
    return found


def _entity_narrowing(query: SearchQuery, principal: Principal | None) -> str:
    if principal is not None and not principal.is_staff:
        return f"entity : {fts_string(str(principal.entity_id))}"
    wanted = query.values("entity")
    return f"entity : {fts_string(wanted[0].value)}" if wanted else ""


def _like_text(columns: Sequence[Any], terms: Sequence[Text]) -> list[ColumnElement[bool]]:
    found = []
    for term in terms:
        hit = or_(*(column.ilike(_like(term.text), escape="\\") for column in columns))
        found.append(_negated(hit, term.negate))
    return found


def alert_select(conn: Connection, query: SearchQuery,
                 principal: Principal | None) -> Select[Any]:
    """The alerts a principal may see that match ``query``, newest first, unlimited.

    Newest is the latest stored (``id``), or with ``since``/``until`` the latest observed
    inside the window: each order walks an index (the primary key, ``observed_at``) and
    stops at the limit instead of sorting every match. With words or observables (FTS5) it
    keeps to the alerts indexed so far: call :func:`catch_up` first for the newest ones.
    """
    binds = _Binds()
    statement = select(alerts)
    if principal is not None and not principal.is_staff:
        statement = statement.where(alerts.c.entity_id == principal.entity_id)
    for item in query.filters:
        statement = statement.where(_alert_filter(conn, item))
    if query.since is not None:
        statement = statement.where(alerts.c.observed_at >= query.since)
    if query.until is not None:
        statement = statement.where(alerts.c.observed_at < query.until)
    if conn.dialect.name == "sqlite":
        observed = [f"observables : {fts_string(f.value)}" for f in query.values("observable")]
        text_terms = _fts_text("alerts_fts", "alerts.id", query.text, observed, binds,
                               narrow=_entity_narrowing(query, principal))
        if text_terms:
            text_terms.append(literal_column(INDEXED_ONLY, Boolean))
    else:
        text_terms = _like_text((alerts.c.title, alerts.c.classification, alerts.c.doc),
                                query.text)
    statement = statement.where(and_(True, *text_terms))
    if query.since is not None or query.until is not None:
        return statement.order_by(alerts.c.observed_at.desc(), alerts.c.id.desc())
    return statement.order_by(alerts.c.id.desc())


def case_select(conn: Connection, query: SearchQuery) -> Select[Any]:
    """The cases matching ``query`` (staff only: callers check), newest first."""
    binds = _Binds()
    statement = select(cases)
    for item in query.filters:
        statement = statement.where(_case_filter(item))
    if query.since is not None:
        statement = statement.where(cases.c.created_at >= query.since)
    if query.until is not None:
        statement = statement.where(cases.c.created_at < query.until)
    if conn.dialect.name == "sqlite":
        text_terms = _fts_text("cases_fts", "cases.rowid", query.text, (), binds)
    else:
        observables = select(case_observables.c.value).where(
            case_observables.c.case_id == cases.c.id)
        text_terms = [_negated(or_(cases.c.title.ilike(_like(t.text), escape="\\"),
                                   cases.c.description.ilike(_like(t.text), escape="\\"),
                                   exists(observables.where(case_observables.c.value.ilike(
                                       _like(t.text), escape="\\")))), t.negate)
                      for t in query.text]
    return statement.where(and_(True, *text_terms)).order_by(
        cases.c.created_at.desc(), cases.c.number.desc())


def needs_index(query: SearchQuery) -> bool:
    """True when ``query`` reads ``alerts_fts`` (words or observables)."""
    return bool(query.text or query.values("observable"))


def case_summary(row: Any, entity_ids: list[str]) -> dict[str, Any]:
    """The search-result view of a case."""
    return {"id": row.id, "number": row.number, "title": row.title, "status": row.status,
            "severity": row.severity, "tlp": row.tlp, "classification": row.classification,
            "entity_ids": entity_ids, "exercise_id": row.exercise_id,
            "created_at": iso(row.created_at)}


class FtsSearch:
    """Search over the embedded store (SQLite FTS5; ILIKE on PostgreSQL)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def search(self, query: str | SearchQuery, principal: Principal | None = None, *,
               limit: int = 50) -> dict[str, list[dict[str, Any]]]:
        """``{"alerts": [...], "cases": [...]}`` visible to ``principal`` (None = operator)."""
        if not 1 <= limit <= MAX_RESULTS:
            raise InvalidInput(f"limit must be 1..{MAX_RESULTS}", field="limit")
        parsed = parse(query) if isinstance(query, str) else query
        if needs_index(parsed):
            catch_up(self.store)
        with self.store.read() as conn:
            found = conn.execute(alert_select(conn, parsed, principal).limit(limit))
            alert_rows = [summary(row) for row in found]
            case_rows: list[dict[str, Any]] = []
            if principal is None or principal.is_staff:
                rows = list(conn.execute(case_select(conn, parsed).limit(limit)))
                entities = _case_entities(conn, [r.id for r in rows])
                case_rows = [case_summary(r, entities.get(r.id, [])) for r in rows]
        return {"alerts": alert_rows, "cases": case_rows}


def _case_entities(conn: Connection, ids: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    if not ids:
        return found
    query = select(case_entities).where(case_entities.c.case_id.in_(ids)).order_by(
        case_entities.c.entity_id)
    for row in conn.execute(query):
        found.setdefault(row.case_id, []).append(row.entity_id)
    return found


__all__ = ["FtsSearch", "alert_select", "case_select", "catch_up", "fts_string", "install_fts",
           "needs_index", "rebuild_fts"]
