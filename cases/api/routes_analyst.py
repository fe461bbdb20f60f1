"""Analyst routes (``/api/v1/analyst``) for center staff: the dashboard, the alert queue and
triage, search, intel, the constituency and incidents. Case routes are in
:mod:`cases.api.routes_analyst_cases`.

Every route takes a staff token (analyst, coordinator or admin); an entity token gets 403
(A5). Routes are thin: they validate the request (bodies forbid unknown fields, sorts and
limits are allow-listed: B3, B11) and call a service, which holds the rules and writes the
audit entries (J1). An object that does not exist gets the API's one 404 body (B1). These
are the routes ``tui.client.remote.RemoteClient`` documents, plus alert groups and
incidents.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from cases.api.analyst_context import AnalystContext, actor_of
from cases.api.analyst_models import (
    AlertSelection,
    Dismissal,
    GroupAction,
    Limit,
    Offset,
    Promotion,
    RefPath,
    Sort,
    Text,
    allowed,
)
from cases.api.auth import StaffPrincipal
from cases.api.limits import SafeJSONRoute
from cases.api.problems import Problem, field_error
from cases.api.routes_analyst_cases import build_case_routes
from cases.search.fts import MAX_RESULTS
from cases.search.query import parse
from cases.services import paging as queries
from cases.services.alert_filter import AlertFilter
from cases.services.incident_models import MAX_LIMIT as MAX_INCIDENTS
from cases.services.incident_models import SORTS as INCIDENT_SORTS
from cases.services.incident_models import STATUSES as INCIDENT_STATUSES
from enrichment.intel.matcher import parse_value

PREFIX = "/api/v1/analyst"
_GROUP_TO = {"ack": "acknowledged", "dismiss": "dismissed", "reopen": "new"}


def build_analyst_router(ctx: AnalystContext) -> APIRouter:
    """The ``/api/v1/analyst`` routes over ``ctx``'s services."""
    router = APIRouter(prefix=PREFIX, route_class=SafeJSONRoute, tags=["analyst"])
    _dashboard_routes(router, ctx)
    _alert_group_routes(router, ctx)
    _alert_routes(router, ctx)
    _triage_routes(router, ctx)
    build_case_routes(router, ctx)
    _search_routes(router, ctx)
    _entity_routes(router, ctx)
    _incident_routes(router, ctx)
    return router


def _dashboard_routes(router: APIRouter, ctx: AnalystContext) -> None:
    @router.get("/dashboard", response_model=None, summary="The situation picture")
    def dashboard(principal: StaffPrincipal, now: datetime | None = None) -> dict[str, Any]:
        when = now or ctx.clock()
        if when.tzinfo is None:
            raise Problem(422, "now needs a time zone", errors=[field_error(
                "now", "an RFC 3339 time with a zone, e.g. 2026-11-23T10:00:00Z",
                ["query", "now"])])
        picture = ctx.services.picture
        board = picture.dashboard(when)
        with ctx.services.store.read() as conn:
            board["deadlines"] = queries.deadline_lists(picture, conn, when)
            board["top_indicators"] = queries.top_indicators(conn)
        board["alerts_total"] = ctx.services.alerts.count()
        return board


def _alert_routes(router: APIRouter, ctx: AnalystContext) -> None:
    @router.get("/alerts", response_model=None,
                summary="A page of alerts for the search syntax, with the (capped) total")
    def alert_page(principal: StaffPrincipal, q: Text = "", sort: Sort = "-observed_at",
                   offset: Offset = 0, limit: Limit = 100) -> dict[str, Any]:
        allowed("sort", sort, queries.ALERT_SORTS)
        parsed = parse(q, now=ctx.clock())
        ctx.index_for(parsed)
        with ctx.services.store.read() as conn:
            return queries.alert_page(conn, parsed, sort, offset, limit)

    @router.get("/alerts/{alert_id}", response_model=None,
                summary="One alert: summary, document and raw record")
    def alert(alert_id: int, principal: StaffPrincipal) -> dict[str, Any]:
        return ctx.services.alerts.get(alert_id, principal)


def _triage_routes(router: APIRouter, ctx: AnalystContext) -> None:
    triage = ctx.services.triage

    @router.post("/alerts/ack", response_model=None, summary="new → acknowledged")
    def acknowledge(body: AlertSelection, principal: StaffPrincipal) -> dict[str, Any]:
        selection = AlertFilter(ids=tuple(body.ids))
        return {"changed": triage.acknowledge(selection, actor_of(principal))}

    @router.post("/alerts/dismiss", response_model=None, summary="→ dismissed with a reason")
    def dismiss(body: Dismissal, principal: StaffPrincipal) -> dict[str, Any]:
        selection = AlertFilter(ids=tuple(body.ids))
        return {"changed": triage.dismiss(selection, body.reason, actor_of(principal))}

    @router.post("/alerts/promote", response_model=None,
                 summary="The alerts into a new case, or into the open case 'case'")
    def promote(body: Promotion, principal: StaffPrincipal) -> dict[str, Any]:
        selection = AlertFilter(ids=tuple(body.ids))
        return ctx.services.cases.promote(selection, actor_of(principal), case_ref=body.case,
                                          title=body.title)


def _alert_group_routes(router: APIRouter, ctx: AnalystContext) -> None:
    triage = ctx.services.triage

    @router.get("/alerts/groups", response_model=None,
                summary="Groups of the open queue (new and acknowledged alerts)")
    def groups(principal: StaffPrincipal) -> list[dict[str, Any]]:
        return [group.as_dict() for group in triage.groups()]

    @router.post("/alerts/groups/{key}", response_model=None,
                 summary="One action on every alert of a group")
    def act_on_group(key: Annotated[str, Path(min_length=1, max_length=200)],
                     body: GroupAction, principal: StaffPrincipal) -> dict[str, Any]:
        changed = triage.act_on_group(key, _GROUP_TO[body.action], actor_of(principal),
                                      reason=body.reason)
        return {"changed": changed}


def _search_routes(router: APIRouter, ctx: AnalystContext) -> None:
    @router.get("/search", response_model=None, summary='{"alerts", "cases"} for the syntax')
    def search(principal: StaffPrincipal, q: Text = "",
               limit: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 50
               ) -> dict[str, list[dict[str, Any]]]:
        return ctx.searcher.search(parse(q, now=ctx.clock()), principal, limit=limit)

    @router.get("/intel/lookup", response_model=None,
                summary="Indicator hits of a value and where it was seen")
    def intel_lookup(principal: StaffPrincipal,
                     value: Annotated[str, Query(min_length=1, max_length=2000)]
                     ) -> dict[str, Any]:
        _, normal = parse_value(value)
        hits = [hit.model_dump(mode="json") for hit in ctx.matcher.match_value(normal)]
        escaped = normal.replace("\\", "\\\\").replace('"', '\\"')
        seen = ctx.searcher.search(f'observable:"{escaped}"', principal, limit=50)
        return {"value": normal, "hits": hits, "seen": seen}

    @router.get("/intel/stats", response_model=None, summary="Indicator counts and sources")
    def intel_stats(principal: StaffPrincipal) -> dict[str, Any]:
        stats = ctx.intel.stats(ctx.clock())
        for source in stats["sources"]:
            when = source["last_sync_at"]
            source["last_sync_at"] = when.isoformat() if when else None
        return stats


def _entity_routes(router: APIRouter, ctx: AnalystContext) -> None:
    services = ctx.services

    @router.get("/entities", response_model=None,
                summary="The constituency with open cases and incidents per entity")
    def entities(principal: StaffPrincipal) -> list[dict[str, Any]]:
        with services.store.read() as conn:
            counts = queries.open_counts(conn)
        return [{"id": e.id, "name": e.name, "sector": e.sector, "criticality": e.criticality,
                 "open_cases": counts["cases"].get(e.id, 0),
                 "open_incidents": counts["incidents"].get(e.id, 0)}
                for e in services.identity.entities()]

    @router.get("/entities/{entity_id}", response_model=None,
                summary="One entity: contacts, open incidents, reporting compliance")
    def entity(entity_id: RefPath, principal: StaffPrincipal) -> dict[str, Any]:
        found = services.identity.entity(entity_id).model_dump(mode="json")
        compliance = services.picture.compliance(ctx.clock())["by_entity"]
        with services.store.read() as conn:
            found["open_incidents"] = queries.entity_incidents(conn, entity_id)
            found["open_cases"] = queries.open_counts(conn)["cases"].get(entity_id, 0)
        found["compliance"] = compliance.get(entity_id)
        return found


def _incident_routes(router: APIRouter, ctx: AnalystContext) -> None:
    incidents = ctx.services.incidents

    @router.get("/incidents", response_model=None, summary="Incidents of every entity")
    def list_incidents(principal: StaffPrincipal,
                       limit: Annotated[int, Query(ge=1, le=MAX_INCIDENTS)] = 50,
                       offset: Offset = 0, sort: Sort = "-created_at",
                       status: Annotated[str | None, Query(max_length=32)] = None
                       ) -> list[dict[str, Any]]:
        allowed("sort", sort, INCIDENT_SORTS)
        allowed("status", status, INCIDENT_STATUSES)
        return incidents.list_for(principal, limit=limit, offset=offset, sort=sort,
                                  status=status)

    @router.get("/incidents/{incident_id}", response_model=None,
                summary="One incident (a TLP:RED read is audited)")
    def incident(incident_id: RefPath, principal: StaffPrincipal) -> dict[str, Any]:
        return incidents.get(principal, incident_id, request_id=actor_of(principal).request_id)
