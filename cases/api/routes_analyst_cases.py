"""Analyst case routes (``/api/v1/analyst``): cases, tasks, timeline, comments, exports and
advisories, each a thin call into the service that holds the rule and writes the audit
entry (J1). Exports go through the TLP policy of :mod:`cases.sharing` (a refused export is
a 403 naming the reason, and is audited as refused).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from cases.api.analyst_context import AnalystContext, actor_of
from cases.api.analyst_models import (
    CaseClosing,
    CaseMerge,
    Comment,
    Limit,
    NewTask,
    Note,
    Offset,
    RefPath,
    Sort,
    TaskChange,
    Text,
    allowed,
)
from cases.api.auth import StaffPrincipal
from cases.search.query import parse
from cases.services import paging as queries
from cases.services.advisories import MAX_LIST as MAX_ADVISORIES
from cases.services.advisories import AdvisoryDraft
from cases.services.case_models import CASE_STATUSES, CaseChanges, CaseDraft
from cases.sharing.case_data import audited_refusal, load_case, record_share
from cases.sharing.markdown_report import export_report
from cases.sharing.misp_export import build_event
from cases.sharing.stix_export import export_bundle

EXPORT_FORMATS = ("misp", "stix", "markdown")
_EXPORT_MEDIA = {"misp": "application/json", "stix": "application/json",
                 "markdown": "text/markdown; charset=utf-8"}
TaskPath = Annotated[str, Path(min_length=1, max_length=64)]


def build_case_routes(router: APIRouter, ctx: AnalystContext) -> None:
    """Add the case, task, export and advisory routes to ``router``."""
    _case_read_routes(router, ctx)
    _case_write_routes(router, ctx)
    _task_routes(router, ctx)
    _timeline_routes(router, ctx)
    _export_route(router, ctx)
    _advisory_routes(router, ctx)


def _case_read_routes(router: APIRouter, ctx: AnalystContext) -> None:
    @router.get("/cases", response_model=None,
                summary="A page of cases for the search syntax, with the (capped) total")
    def case_page(principal: StaffPrincipal, *, q: Text = "",
                  status: Annotated[str | None, Query(max_length=32)] = None,
                  include_closed: bool = False, sort: Sort = "-created_at",
                  offset: Offset = 0, limit: Limit = 100) -> dict[str, Any]:
        allowed("sort", sort, queries.CASE_SORTS)
        allowed("status", status, CASE_STATUSES)
        parsed = parse(q, now=ctx.clock())
        ctx.index_for(parsed)
        with ctx.services.store.read() as conn:
            return queries.case_page(conn, parsed, status=status, include_closed=include_closed,
                                     sort=sort, offset=offset, limit=limit)

    @router.get("/cases/{ref}", response_model=None,
                summary="One case (id or number) with tasks, alerts, timeline, comments")
    def case(ref: RefPath, principal: StaffPrincipal) -> dict[str, Any]:
        return ctx.services.cases.get(ref, principal)


def _case_write_routes(router: APIRouter, ctx: AnalystContext) -> None:
    cases = ctx.services.cases

    @router.post("/cases", status_code=201, response_model=None, summary="Open a case")
    def create_case(body: CaseDraft, principal: StaffPrincipal) -> dict[str, Any]:
        return cases.create(body, actor_of(principal), principal=principal)

    @router.patch("/cases/{ref}", response_model=None, summary="Change fields of an open case")
    def update_case(ref: RefPath, body: CaseChanges, principal: StaffPrincipal
                    ) -> dict[str, Any]:
        return cases.update(ref, body, actor_of(principal))

    @router.post("/cases/{ref}/close", response_model=None,
                 summary="Close with a resolution and a summary")
    def close_case(ref: RefPath, body: CaseClosing, principal: StaffPrincipal
                   ) -> dict[str, Any]:
        return cases.close(ref, body.resolution, body.summary, actor_of(principal))

    @router.post("/cases/{ref}/merge", response_model=None,
                 summary="Merge the case 'source' into this one (the source is closed)")
    def merge_case(ref: RefPath, body: CaseMerge, principal: StaffPrincipal
                   ) -> dict[str, Any]:
        return ctx.services.case_merge.merge(ref, body.source, actor_of(principal))


def _task_routes(router: APIRouter, ctx: AnalystContext) -> None:
    tasks = ctx.services.tasks

    @router.post("/cases/{ref}/tasks", status_code=201, response_model=None,
                 summary="Add a task")
    def add_task(ref: RefPath, body: NewTask, principal: StaffPrincipal) -> dict[str, Any]:
        return tasks.add(ref, body.title, actor_of(principal), owner=body.owner,
                         due_at=body.due_at, notes=body.notes)

    @router.patch("/tasks/{task_id}", response_model=None,
                  summary="Move a task to a status ('done' …) or give it to an owner")
    def change_task(task_id: TaskPath, body: TaskChange, principal: StaffPrincipal
                    ) -> dict[str, Any]:
        if body.status is not None:
            return tasks.set_status(task_id, body.status, actor_of(principal), note=body.note)
        return tasks.reassign(task_id, str(body.owner), actor_of(principal))


def _timeline_routes(router: APIRouter, ctx: AnalystContext) -> None:
    notes = ctx.services.timeline

    @router.post("/cases/{ref}/notes", status_code=201, response_model=None,
                 summary="An analyst timeline entry")
    def add_note(ref: RefPath, body: Note, principal: StaffPrincipal) -> dict[str, Any]:
        return notes.note(ref, body.text, actor_of(principal), event_at=body.event_at)

    @router.post("/cases/{ref}/comments", status_code=201, response_model=None,
                 summary="A comment on the case")
    def add_comment(ref: RefPath, body: Comment, principal: StaffPrincipal) -> dict[str, Any]:
        return notes.comment(ref, body.text, actor_of(principal))


def _export_route(router: APIRouter, ctx: AnalystContext) -> None:
    @router.get("/cases/{ref}/export", response_model=None,
                summary="The case as a MISP event, a STIX 2.1 bundle or a Markdown report "
                        "(TLP policy enforced, audited)")
    def export_case(ref: RefPath, principal: StaffPrincipal,
                    format: Annotated[str, Query(max_length=16)],
                    to: Annotated[str | None, Query(min_length=1, max_length=64,
                                                    description="the recipient entity")]
                    = None) -> Response:
        allowed("format", format, EXPORT_FORMATS)
        text = _export(ctx, ref, principal, format, to)
        return Response(text, media_type=_EXPORT_MEDIA[format])


def _export(ctx: AnalystContext, ref: str, principal: Any, fmt: str,
            recipient: str | None) -> str:
    store, settings = ctx.services.store, ctx.services.settings
    actor = actor_of(principal)
    export = load_case(store, ref, principal)
    if fmt == "misp":
        with audited_refusal(store, actor, export, "misp-file"):
            event = build_event(export)
        record_share(store, actor, export, "misp-file",
                     details={"attributes": len(event.event.attributes),
                              "excluded": len(event.excluded)})
        return str(event.event.to_json(indent=2))
    if fmt == "stix":
        bundle = export_bundle(store, export, settings.center_name, actor, recipient)
        return str(bundle.bundle.serialize(pretty=True))
    return export_report(store, export, settings.regime(), actor, recipient)


def _advisory_routes(router: APIRouter, ctx: AnalystContext) -> None:
    advisories = ctx.services.advisories

    @router.post("/advisories", status_code=201, response_model=None,
                 summary="Publish an advisory (TLP:AMBER needs named entities or sectors)")
    def publish(body: AdvisoryDraft, principal: StaffPrincipal) -> dict[str, Any]:
        return advisories.publish(body, actor_of(principal), principal=principal)

    @router.get("/advisories", response_model=None,
                summary="Every advisory with its recipients and read receipts")
    def list_advisories(principal: StaffPrincipal,
                        limit: Annotated[int, Query(ge=1, le=MAX_ADVISORIES)] = 100
                        ) -> list[dict[str, Any]]:
        return advisories.list_for(principal, limit=limit)
