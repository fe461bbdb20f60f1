"""Payload limits and a safe JSON reader for request bodies.

Body size: FastAPI's own ``max_body_size`` (Starlette's ``RequestBodyLimitMiddleware``)
answers 413 before reading when ``Content-Length`` is over the cap (D1) and, for chunked
bodies, as soon as the running count crosses it (D2). :class:`RequestShape` refuses a
``Content-Encoding`` other than identity with 415 (no decompression, so no gzip bomb; D6)
and a malformed ``Content-Length`` with 400.

JSON bodies are read by :func:`safe_json_loads`, never by FastAPI's default: orjson refuses
invalid UTF-8, lone surrogates, ``NaN``/``Infinity`` and nesting past 1024; then the depth
is checked against ``max_json_depth``, and a second, hook-driven pass refuses duplicate keys
and integers outside 64 bits (D5). Every refusal is a located 4xx problem.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Sequence
from email.message import Message
from typing import Any

import orjson
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from cases.api.problems import Problem, field_error, send_problem

DEPTH_SCOPE_KEY = "pukara.max_json_depth"
DEFAULT_MAX_DEPTH = 64
INT64 = 2**63
_MAX_INT_DIGITS = 20


class RequestShape:
    """Refuse encoded bodies (415) and malformed ``Content-Length`` (400) up front."""

    def __init__(self, app: ASGIApp, *, max_json_depth: int = DEFAULT_MAX_DEPTH,
                 on_reject: Callable[[str], None] | None = None) -> None:
        self.app = app
        self.max_json_depth = max_json_depth
        self._on_reject = on_reject or (lambda _reason: None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            self._on_reject("encoding")
            await send_problem(send, 415, "Content-Encoding is not accepted; send identity")
            return
        length = headers.getlist("content-length")
        if length and (len(set(length)) > 1 or not length[0].strip().isdigit()
                       or len(length[0].strip()) > 19):
            self._on_reject("length")
            await send_problem(send, 400, "malformed Content-Length")
            return
        scope[DEPTH_SCOPE_KEY] = self.max_json_depth
        await self.app(scope, receive, send)


def _json_problem(message: str, where: str | int = "body") -> Problem:
    loc: list[str | int] = ["body"] if where == "body" else ["body", where]
    return Problem(400, f"the body is not acceptable JSON: {message}",
                   errors=[field_error("body", message, loc)])


def _check_depth(value: Any, max_depth: int) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Sequence[Any] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            raise _json_problem(f"nesting deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _json_problem(f"duplicate key {key[:64]!r}")
        seen[key] = value
    return seen


def _bounded_int(text: str) -> int:
    digits = text.lstrip("-")
    if len(digits) > _MAX_INT_DIGITS or not -INT64 <= int(text) < INT64:
        raise _json_problem(f"integer {text[:24]}… is outside the 64-bit range")
    return int(text)


def _no_constant(name: str) -> Any:
    raise _json_problem(f"{name} is not a JSON number")


def safe_json_loads(body: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Decode a request body, refusing what JSON parsers disagree on (D5); 400 otherwise."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _json_problem(str(exc), exc.pos) from None
    _check_depth(value, max_depth)
    try:
        json.loads(body, object_pairs_hook=_no_duplicates, parse_int=_bounded_int,
                   parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise _json_problem(str(exc)) from None
    return value


def is_json_media(content_type: str | None) -> bool:
    """True for ``application/json`` and ``application/*+json``."""
    if not content_type:
        return False
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json"))


def media_type(content_type: str | None) -> str:
    """The bare media type of a ``Content-Type`` value, lower case."""
    return (content_type or "").split(";", 1)[0].strip().lower()


class SafeJSONRequest(Request):
    """A request whose ``json()`` is :func:`safe_json_loads`."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            depth = self.scope.get(DEPTH_SCOPE_KEY, DEFAULT_MAX_DEPTH)
            self._json = safe_json_loads(await self.body(), depth)
        return self._json


class SafeJSONRoute(APIRoute):
    """A route that reads JSON bodies safely and refuses other media types with 415 (A10)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()
        json_body = self.body_field is not None and not any(
            getattr(p.field_info, "media_type", "").startswith("multipart")
            for p in self.dependant.body_params)

        async def handler(request: Request) -> Response:
            if json_body and not is_json_media(request.headers.get("content-type")):
                raise Problem(415, "the body must be application/json")
            return await original(SafeJSONRequest(request.scope, request.receive))

        return handler
