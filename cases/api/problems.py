"""RFC 9457 problem details: every error of the API is ``application/problem+json``.

A problem carries ``type`` (``urn:pukara:problem:<slug>``), ``title``, ``status``, ``detail``
and ``errors``: a list of ``{"field", "loc", "message"}`` naming what was wrong. Errors of
:mod:`pukara.core.errors` map by their ``status``; pydantic validation errors become 422
with their locations; anything unexpected becomes a 500 without a traceback (D5, D12).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Send

from pukara.core.errors import PukaraError, RateLimited

PROBLEM_TYPE = "application/problem+json"
_log = logging.getLogger("pukara.api")

_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    408: "request-timeout",
    409: "conflict",
    411: "length-required",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "invalid-input",
    429: "too-many-requests",
    500: "internal-error",
    503: "unavailable",
}
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    409: "Conflict",
    411: "Length required",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}

#: the one body every authentication failure gets (SECURITY A1)
UNAUTHORIZED_DETAIL = "invalid or missing bearer token"
#: the one body every 404 gets, whatever is missing or hidden (B1: no existence oracle)
NOT_FOUND_DETAIL = "no such object for this caller"


class Problem(StarletteHTTPException):
    """An HTTP error raised from anywhere in the API, rendered as a problem document."""

    def __init__(self, status: int, detail: str, *, errors: Sequence[Mapping[str, Any]] = (),
                 headers: Mapping[str, str] | None = None, title: str | None = None) -> None:
        super().__init__(status_code=status, detail=detail, headers=dict(headers or {}))
        self.errors = [dict(e) for e in errors]
        self.title = title


def field_error(field: str, message: str, loc: Sequence[str | int] | None = None
                ) -> dict[str, Any]:
    """One entry of ``errors``."""
    return {"field": field, "loc": list(loc) if loc is not None else [field],
            "message": message}


def problem_document(status: int, detail: str, *, errors: Sequence[Mapping[str, Any]] = (),
                     title: str | None = None) -> dict[str, Any]:
    """The problem body for ``status``."""
    return {
        "type": f"urn:pukara:problem:{_SLUGS.get(status, 'error')}",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "errors": list(errors),
    }


def problem_response(status: int, detail: str, *, errors: Sequence[Mapping[str, Any]] = (),
                     headers: Mapping[str, str] | None = None,
                     title: str | None = None) -> Response:
    """A problem+json response."""
    body = orjson.dumps(problem_document(status, detail, errors=errors, title=title))
    return Response(body, status_code=status, media_type=PROBLEM_TYPE, headers=headers)


def unauthorized() -> Response:
    """The single 401 of the API: same body whatever was wrong with the credentials."""
    return problem_response(401, UNAUTHORIZED_DETAIL,
                            headers={"WWW-Authenticate": 'Bearer realm="pukara"'})


async def send_problem(send: Send, status: int, detail: str, *,
                       headers: Mapping[str, str] | None = None) -> None:
    """Write a problem response straight to an ASGI ``send`` (for middleware)."""
    body = orjson.dumps(problem_document(status, detail))
    raw = [(b"content-type", PROBLEM_TYPE.encode()), (b"content-length", str(len(body)).encode()),
           (b"connection", b"close")]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """pydantic's error list as ``errors`` entries, naming each field by its location."""
    out = []
    for error in errors:
        loc = [part for part in error.get("loc", ()) if part is not None]
        named = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
        message = str(error.get("msg", "invalid"))
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        out.append({"field": ".".join(named) or "body", "loc": loc, "message": message})
    return out


def _count_reject(request: Request, reason: str) -> None:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.reject(reason)


def _pukara_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PukaraError)
    _count_reject(request, _SLUGS.get(exc.status, "error"))
    if exc.status == 401:
        return unauthorized()
    if exc.status == 404:
        return problem_response(404, NOT_FOUND_DETAIL)
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    errors = [field_error(exc.field, exc.message)] if exc.field else []
    if exc.status >= 500:
        _log.error("service error %s: %s", type(exc).__name__, exc.message)
    return problem_response(exc.status, exc.message, errors=errors, headers=headers,
                            title=exc.title)


def _request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError | ValidationError)
    _count_reject(request, "invalid-input")
    errors = validation_errors(exc.errors())
    return problem_response(422, "the request does not match the schema", errors=errors)


def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    _count_reject(request, _SLUGS.get(exc.status_code, "http_error"))
    if exc.status_code == 401:
        return unauthorized()
    if exc.status_code == 404:
        return problem_response(404, NOT_FOUND_DETAIL)
    errors = exc.errors if isinstance(exc, Problem) else []
    title = exc.title if isinstance(exc, Problem) else None
    return problem_response(exc.status_code, str(exc.detail), errors=errors,
                            headers=exc.headers, title=title)


def _operational(_request: Request, exc: Exception) -> Response:
    _log.warning("database busy: %s", type(exc).__name__)
    return problem_response(503, "the store is busy; retry the request",
                            headers={"Retry-After": "1"})


def _unexpected(_request: Request, exc: Exception) -> Response:
    _log.error("unhandled %s in request", type(exc).__name__, exc_info=exc)
    return problem_response(500, "internal error; the request was not completed")


def install_handlers(app: FastAPI) -> None:
    """Register the problem handlers on ``app``."""
    app.add_exception_handler(PukaraError, _pukara_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(ValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(OperationalError, _operational)
    app.add_exception_handler(Exception, _unexpected)
