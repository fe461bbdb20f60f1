"""Routes for entity CSIRTs (``/api/v1``): incidents, evidence, alerts, inbox, advisories.

Routes stay thin: they check the request, build the record, and hand it to a service inside
:meth:`Idempotency.run` (one write transaction with the key and the stored answer). The
entity is always the token's; ``entity_id`` parameters and headers such as ``X-Entity``,
``X-Internal``, ``X-Sync`` or ``synchronized-upsert`` are not read by any route (A4, B9).
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, BinaryIO, Protocol

import orjson
from fastapi import APIRouter, File, Header, Path, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Connection
from starlette.responses import Response

from cases.api.auth import EntityPrincipal
from cases.api.idempotency import HEADER, Idempotency, Outcome, parse_key, request_fingerprint
from cases.api.limits import SafeJSONRoute, media_type
from cases.api.metrics import ApiMetrics
from cases.api.models import IncidentSubmission
from cases.api.problems import Problem, field_error
from cases.services.identity import Principal
from cases.services.incident_models import MAX_LIMIT, SORTS, STATUSES, IncidentUpdate
from pukara.core import plugins
from pukara.core.config import Settings
from pukara.core.schema import IncidentReport, IngestResult, RawReport

SPOOL_IN_MEMORY = 1024 * 1024
#: the largest page of the inbox and advisory feeds
FEED_LIMIT = 500
EVIDENCE_OVERHEAD = 64 * 1024
#: the path whose body cap is ``max_evidence_bytes`` (+ multipart overhead), not the default
EVIDENCE_PATH = re.compile(r"/api/v1/incidents/[^/]+/evidence")
#: media types POST /api/v1/alerts accepts (forms and text/plain are refused: A10)
ALERT_MEDIA = frozenset({
    "application/json", "application/x-ndjson", "application/jsonl", "application/jsonlines",
    "text/csv", "application/octet-stream", "application/vnd.tcpdump.pcap", "message/rfc822",
})
IdempotencyKey = Annotated[str | None, Header(alias=HEADER, max_length=512)]
IncidentId = Annotated[str, Path(min_length=1, max_length=64)]


class Incidents(Protocol):
    """The incident service as the routes use it (``cases.services.incidents``)."""

    def submit(self, conn: Connection, principal: Principal, report: IncidentReport, *,
               request_id: str | None = None) -> dict[str, Any]: ...

    def list_for(self, principal: Principal, *, limit: int = 50, offset: int = 0,
                 sort: str = "-created_at", status: str | None = None
                 ) -> list[dict[str, Any]]: ...

    def get(self, principal: Principal, incident_id: str) -> dict[str, Any]: ...

    def add_update(self, conn: Connection, principal: Principal, incident_id: str,
                   update: IncidentUpdate, *, request_id: str | None = None
                   ) -> dict[str, Any]: ...

    def add_evidence(self, conn: Connection, principal: Principal, incident_id: str, *,
                     filename: str, content_type: str, stream: BinaryIO, max_bytes: int,
                     request_id: str | None = None) -> dict[str, Any]: ...


class Inbox(Protocol):
    """The notification inbox (``playbooks.notify`` Outbox), named here: playbooks is above."""

    def inbox_for(self, principal: Principal, limit: int = 100) -> list[dict[str, Any]]: ...


class Advisories(Protocol):
    """The advisory service as the feed route uses it (``cases.services.advisories``)."""

    def list_for(self, principal: Principal | None = None, *,
                 limit: int = 100) -> list[dict[str, Any]]: ...


class Ingest(Protocol):
    """The pipeline entry the alerts route hands raw reports to."""

    def __call__(self, report: RawReport, conn: Connection, /) -> IngestResult: ...


@dataclass
class EntityApi:
    """What the entity routes need, handed in by the app factory."""

    incidents: Incidents
    ingest: Ingest
    idempotency: Idempotency
    metrics: ApiMetrics
    settings: Settings
    inbox: Inbox | None = None
    advisories: Advisories | None = None


def _json(outcome: Outcome, request_id: str) -> Response:
    headers = {"X-Request-ID": request_id}
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(outcome.body, status_code=outcome.status, media_type="application/json",
                    headers=headers)


def _new_request_id() -> str:
    return uuid.uuid4().hex


def _check_sort(sort: str) -> str:
    if sort not in SORTS:
        raise Problem(422, "unknown sort", errors=[field_error(
            "sort", f"sort must be one of: {', '.join(SORTS)}", ["query", "sort"])])
    return sort


def _check_status(status: str | None) -> str | None:
    if status is not None and status not in STATUSES:
        raise Problem(422, "unknown status", errors=[field_error(
            "status", f"status must be one of: {', '.join(STATUSES)}", ["query", "status"])])
    return status


def _fingerprint(request: Request, digest: str) -> str:
    return request_fingerprint(request.method, request.url.path, request.url.query, digest)


def build_entity_router(api: EntityApi) -> APIRouter:
    """The ``/api/v1`` routes of entity tokens."""
    router = APIRouter(prefix="/api/v1", route_class=SafeJSONRoute, tags=["entity"])
    _incident_routes(router, api)
    _read_routes(router, api)
    _evidence_route(router, api)
    _alerts_route(router, api)
    _feed_routes(router, api)
    return router


def _incident_routes(router: APIRouter, api: EntityApi) -> None:
    @router.post("/incidents", status_code=201, response_model=None,
                 summary="Report an incident (returns its id, tracking number, deadlines)")
    async def submit_incident(request: Request, submission: IncidentSubmission,
                              principal: EntityPrincipal, idempotency_key: IdempotencyKey = None
                              ) -> Response:
        key = parse_key(idempotency_key)
        body = await request.body()
        report = submission.to_report(str(principal.entity_id), body.decode("utf-8"))
        request_id = _new_request_id()

        def work(conn: Connection) -> tuple[int, Any]:
            return 201, api.incidents.submit(conn, principal, report, request_id=request_id)

        outcome = await run_in_threadpool(api.idempotency.run, principal, key,
                                          _fingerprint(request, _sha256(body)), work)
        _count(api, "incident", outcome)
        return _json(outcome, request_id)

    _update_route(router, api)


def _read_routes(router: APIRouter, api: EntityApi) -> None:
    @router.get("/incidents", response_model=None, summary="This entity's incidents")
    async def list_incidents(
        principal: EntityPrincipal,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
        sort: Annotated[str, Query(max_length=32, description=f"one of {', '.join(SORTS)}")]
        = "-created_at",
        status: Annotated[str | None, Query(max_length=32)] = None,
    ) -> list[dict[str, Any]]:
        return await run_in_threadpool(
            lambda: api.incidents.list_for(principal, limit=limit, offset=offset,
                                           sort=_check_sort(sort), status=_check_status(status)))

    @router.get("/incidents/{incident_id}", response_model=None, summary="One incident")
    async def get_incident(incident_id: IncidentId, principal: EntityPrincipal
                           ) -> dict[str, Any]:
        return await run_in_threadpool(api.incidents.get, principal, incident_id)


def _update_route(router: APIRouter, api: EntityApi) -> None:
    @router.post("/incidents/{incident_id}/updates", status_code=201, response_model=None,
                 summary="Add a stage report or update (an immutable version)")
    async def add_update(request: Request, incident_id: IncidentId, update: IncidentUpdate,
                         principal: EntityPrincipal, idempotency_key: IdempotencyKey = None
                         ) -> Response:
        key = parse_key(idempotency_key)
        body = await request.body()
        request_id = _new_request_id()

        def work(conn: Connection) -> tuple[int, Any]:
            return 201, api.incidents.add_update(conn, principal, incident_id, update,
                                                 request_id=request_id)

        outcome = await run_in_threadpool(api.idempotency.run, principal, key,
                                          _fingerprint(request, _sha256(body)), work)
        _count(api, "update", outcome)
        return _json(outcome, request_id)


def _evidence_route(router: APIRouter, api: EntityApi) -> None:
    limit = api.settings.api.max_evidence_bytes

    @router.post("/incidents/{incident_id}/evidence", status_code=201, response_model=None,
                 form_limits={"max_files": 1, "max_fields": 2, "max_part_size": 64 * 1024},
                 summary="Attach one evidence file (multipart field 'file')")
    async def add_evidence(request: Request, incident_id: IncidentId,
                           file: Annotated[UploadFile, File(description="the evidence file")],
                           principal: EntityPrincipal, idempotency_key: IdempotencyKey = None
                           ) -> Response:
        key = parse_key(idempotency_key)
        digest = await run_in_threadpool(_file_digest, file)
        filename, declared = file.filename or "", file.content_type or ""
        fingerprint = _fingerprint(request, _sha256(f"{digest}\n{filename}\n{declared}".encode()))
        request_id = _new_request_id()

        def work(conn: Connection) -> tuple[int, Any]:
            file.file.seek(0)
            return 201, api.incidents.add_evidence(
                conn, principal, incident_id, filename=filename, content_type=declared,
                stream=file.file, max_bytes=limit, request_id=request_id)

        outcome = await run_in_threadpool(api.idempotency.run, principal, key, fingerprint, work)
        _count(api, "evidence", outcome)
        return _json(outcome, request_id)


def _alerts_route(router: APIRouter, api: EntityApi) -> None:
    @router.post("/alerts", response_model=None,
                 summary="Submit alerts: a JSON array or NDJSON (format 'alerts', the default), "
                         "any registered parser's format, or 'auto' to detect it")
    async def post_alerts(request: Request, principal: EntityPrincipal,
                          format: Annotated[str, Query(max_length=64)] = "alerts",
                          idempotency_key: IdempotencyKey = None) -> Response:
        if media_type(request.headers.get("content-type")) not in ALERT_MEDIA:
            raise Problem(415, f"alerts are sent as one of: {', '.join(sorted(ALERT_MEDIA))}")
        known = ["auto", *plugins.names(plugins.PARSERS)]
        if format not in known:
            raise Problem(422, "unknown format", errors=[field_error(
                "format", f"format must be one of: {', '.join(known)}", ["query", "format"])])
        key = parse_key(idempotency_key)
        spool, digest = await _spool_body(request)
        request_id = _new_request_id()

        def work(conn: Connection) -> tuple[int, Any]:
            spool.seek(0)
            report = RawReport(stream=spool, source="api", entity_id=principal.entity_id,
                               format=format, metadata={"request_id": request_id})
            result = api.ingest(report, conn)
            return 200, result.model_dump(mode="json")

        try:
            outcome = await run_in_threadpool(api.idempotency.run, principal, key,
                                              _fingerprint(request, digest), work)
        finally:
            spool.close()
        _count(api, "alerts", outcome)
        if not outcome.replayed:
            api.metrics.alerts_ingested.inc(_accepted(outcome))
        return _json(outcome, request_id)


def _feed_routes(router: APIRouter, api: EntityApi) -> None:
    @router.get("/inbox", response_model=None,
                summary="Notifications for this entity, newest first")
    async def inbox(principal: EntityPrincipal,
                    limit: Annotated[int, Query(ge=1, le=FEED_LIMIT)] = 100
                    ) -> list[dict[str, Any]]:
        if api.inbox is None:
            return []
        return await run_in_threadpool(api.inbox.inbox_for, principal, limit)

    @router.get("/advisories", response_model=None,
                summary="Advisories this entity may read (its own, its sector's, TLP:CLEAR "
                        "and TLP:GREEN ones), newest first")
    async def advisories(principal: EntityPrincipal,
                         limit: Annotated[int, Query(ge=1, le=FEED_LIMIT)] = 100
                         ) -> list[dict[str, Any]]:
        if api.advisories is None:
            return []
        feed = api.advisories
        return await run_in_threadpool(lambda: feed.list_for(principal, limit=limit))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_digest(upload: UploadFile) -> str:
    digest = hashlib.sha256()
    upload.file.seek(0)
    for chunk in iter(lambda: upload.file.read(1024 * 1024), b""):
        digest.update(chunk)
    upload.file.seek(0)
    return digest.hexdigest()


async def _spool_body(request: Request) -> tuple[Any, str]:
    """The body streamed into a spooled temp file (memory bounded) and its SHA-256."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
    digest = hashlib.sha256()
    try:
        async for chunk in request.stream():
            digest.update(chunk)
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    return spool, digest.hexdigest()


def _accepted(outcome: Outcome) -> int:
    document = orjson.loads(outcome.body)
    return int(document.get("accepted", 0)) if isinstance(document, dict) else 0


def _count(api: EntityApi, kind: str, outcome: Outcome) -> None:
    if not outcome.replayed:
        api.metrics.submissions.labels(kind=kind).inc()

