"""Payload limits and a safe JSON reader for request bodies.

:class:`RequestLimits` answers 413 before reading when ``Content-Length`` is over the cap
(D1) and, for bodies without a length, as soon as the running count crosses it (D2); memory
stays bounded because nothing is buffered here. It refuses a ``Content-Encoding`` other than
identity with 415 (no decompression, so no gzip bomb; D6) and a malformed or repeated
``Content-Length`` with 400, and a body that trickles in slower than ``MIN_BODY_RATE`` after
a grace period with 408 (C6). (Starlette's own body limit answers in text/plain, so it is not
used: every error of the API is a problem document.)

JSON bodies are read by :func:`safe_json_loads`, never by FastAPI's default: orjson refuses
invalid UTF-8, lone surrogates, ``NaN``/``Infinity`` and nesting past 1024; then the depth
is checked against ``max_json_depth``, and a second, hook-driven pass refuses duplicate keys
and integers outside 64 bits (D5). Every refusal is a located 4xx problem.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Coroutine, Sequence
from email.message import Message as EmailMessage
from typing import Any

import anyio
import orjson
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cases.api.problems import Problem, field_error, send_problem

DEPTH_SCOPE_KEY = "pukara.max_json_depth"
DEFAULT_MAX_DEPTH = 64
INT64 = 2**63
_MAX_INT_DIGITS = 20
#: a body may take this long, plus one second per MIN_BODY_RATE bytes received (C6)
BODY_GRACE_SECONDS = 30.0
MIN_BODY_RATE = 1024


class BodyTooLarge(Problem):
    """The body crossed its cap while streaming (an HTTPException, so FastAPI re-raises it)."""

    def __init__(self, cap: int) -> None:
        super().__init__(413, f"the request body is over its limit of {cap} bytes")


class BodyTooSlow(Problem):
    """The body arrived slower than the minimum rate (a trickling upload, C6)."""

    def __init__(self) -> None:
        super().__init__(408, "the request body arrived too slowly")


class RequestLimits:
    """Refuse encoded bodies (415), malformed lengths (400), oversized bodies (413) and
    trickling bodies (408).

    The cap is ``max_body`` unless a ``(path pattern, cap)`` of ``caps`` matches. A declared
    ``Content-Length`` over the cap is refused before the application runs; a body without
    one is counted as it streams and refused when the count crosses the cap. A body must
    arrive within ``body_grace`` seconds plus one second per ``min_body_rate`` bytes received.
    """

    def __init__(self, app: ASGIApp, *, max_body: int,
                 caps: Sequence[tuple[re.Pattern[str], int]] = (),
                 max_json_depth: int = DEFAULT_MAX_DEPTH,
                 body_grace: float = BODY_GRACE_SECONDS, min_body_rate: int = MIN_BODY_RATE,
                 on_reject: Callable[[str], None] | None = None) -> None:
        self.app = app
        self.max_body = max_body
        self.caps = list(caps)
        self.max_json_depth = max_json_depth
        self.body_grace = body_grace
        self.min_body_rate = max(1, min_body_rate)
        self._on_reject = on_reject or (lambda _reason: None)

    def cap_for(self, path: str) -> int:
        """The body cap of ``path``."""
        return next((cap for pattern, cap in self.caps if pattern.fullmatch(path)),
                    self.max_body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(Headers(scope=scope), self.cap_for(scope["path"]))
        if refusal is not None:
            status, reason, detail = refusal
            self._on_reject(reason)
            await send_problem(send, status, detail)
            return
        scope[DEPTH_SCOPE_KEY] = self.max_json_depth
        await self._counted(scope, receive, send, self.cap_for(scope["path"]))

    def _refusal(self, headers: Headers, cap: int) -> tuple[int, str, str] | None:
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            return 415, "encoding", "Content-Encoding is not accepted; send identity"
        lengths = headers.getlist("content-length")
        if not lengths:
            return None
        value = lengths[0].strip()
        if len(set(lengths)) > 1 or not value.isdigit() or len(value) > 19:
            return 400, "length", "malformed Content-Length"
        if int(value) > cap:
            return 413, "too_large", f"the request body is over its limit of {cap} bytes"
        return None

    async def _counted(self, scope: Scope, receive: Receive, send: Send, cap: int) -> None:
        received = 0
        started = body_done = False
        begun = time.monotonic()

        async def receive_counted() -> Message:
            nonlocal received, body_done
            if body_done:
                return await receive()
            remaining = begun + self.body_grace + received / self.min_body_rate - time.monotonic()
            with anyio.move_on_after(max(remaining, 0)) as waited:
                message = await receive()
            if waited.cancelled_caught:
                self._on_reject("too_slow")
                raise BodyTooSlow
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > cap:
                    self._on_reject("too_large")
                    raise BodyTooLarge(cap)
            return message

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_counted, send_tracked)
        except (BodyTooLarge, BodyTooSlow) as exc:
            if started:
                raise
            await send_problem(send, exc.status_code, str(exc.detail))


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
    message = EmailMessage()
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
    """A route that reads JSON bodies safely; a body of another media type than the route
    takes (JSON or multipart) is refused with 415 (A10)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()
        multipart = any(getattr(p.field_info, "media_type", "").startswith("multipart")
                        for p in self.dependant.body_params)
        json_body = self.body_field is not None and not multipart

        async def handler(request: Request) -> Response:
            content_type = request.headers.get("content-type")
            if json_body and not is_json_media(content_type):
                raise Problem(415, "the body must be application/json")
            if multipart and media_type(content_type) != "multipart/form-data":
                raise Problem(415, "the body must be multipart/form-data")
            return await original(SafeJSONRequest(request.scope, request.receive))

        return handler
