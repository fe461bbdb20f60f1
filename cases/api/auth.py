"""Bearer-token authentication: a default-deny gate plus route dependencies for roles.

:class:`AuthGate` wraps the whole application. Every path that is not on
:data:`PUBLIC_PATHS` needs ``Authorization: Bearer pk_…``; anything else — no header, an empty
value, another scheme, an oversized token, a prefix, a stored hash, an entity id, a revoked
or expired token — gets the same 401 problem (A1, A2, A3). The token is looked up on every
request, so a revocation takes effect on the next request, keep-alive or not. Cookies are
never read (A10). Failed attempts are throttled per peer and accepted tokens are rate
limited per token (C1–C3). The route dependencies then enforce roles (A5, A9):
:func:`entity_principal` for entity routes, :func:`staff_principal` for the analyst routes,
:func:`admin_principal` for ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from cases.api.problems import UNAUTHORIZED_DETAIL, Problem, send_problem
from cases.api.ratelimit import PeerResolver, TokenBuckets, retry_after
from cases.services.identity import MAX_TOKEN_LENGTH, Identity, Principal, Role
from pukara.core.config import ApiLimits
from pukara.core.errors import AuthenticationFailed

#: the only paths served without a token
PUBLIC_PATHS = frozenset({"/healthz"})
PRINCIPAL_SCOPE_KEY = "pukara.principal"
_bearer_scheme = HTTPBearer(auto_error=False, description="An entity or staff API token")


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` value, or None for any other form."""
    if not authorization or len(authorization) > MAX_TOKEN_LENGTH + 16:
        return None
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        return None
    return value


class AuthGate:
    """ASGI middleware: authenticate, throttle, and put the Principal in the scope."""

    def __init__(self, app: ASGIApp, *, identity: Identity, limits: ApiLimits,
                 on_reject: Callable[[str], None] | None = None) -> None:
        self.app = app
        self.identity = identity
        self.peers = PeerResolver(limits.trusted_proxies)
        self.per_token = TokenBuckets(limits.rate_per_minute, limits.rate_burst)
        self.failed_auth = TokenBuckets(limits.failed_auth_per_minute,
                                        limits.failed_auth_per_minute)
        self._on_reject = on_reject or (lambda _reason: None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        peer = self.peers.peer(scope.get("client"), headers)
        wait = self.failed_auth.exhausted(peer)
        if wait:
            await self._reject(send, "auth_throttled", wait)
            return
        token = bearer_token(headers.get("authorization"))
        try:
            principal = await anyio.to_thread.run_sync(self.identity.authenticate, token)
        except AuthenticationFailed:
            self.failed_auth.take(peer)
            self._on_reject("unauthenticated")
            await send_problem(send, 401, UNAUTHORIZED_DETAIL,
                               headers={"WWW-Authenticate": 'Bearer realm="pukara"'})
            return
        wait = self.per_token.take(str(principal.token_id))
        if wait:
            await self._reject(send, "rate_limited", wait)
            return
        scope[PRINCIPAL_SCOPE_KEY] = principal
        await self.app(scope, receive, send)

    async def _reject(self, send: Send, reason: str, wait: float) -> None:
        self._on_reject(reason)
        await send_problem(send, 429, "too many requests; retry later",
                           headers={"Retry-After": str(retry_after(wait))})


def current_principal(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)],
) -> Principal:
    """The caller the gate authenticated; 401 if the gate did not run or failed."""
    principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if not isinstance(principal, Principal):
        raise Problem(401, UNAUTHORIZED_DETAIL)
    return principal


def entity_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """An entity's token; staff and admin tokens get 403 on entity routes."""
    if principal.role is not Role.REPORTER or not principal.entity_id:
        raise Problem(403, "this route takes an entity token")
    return principal


def staff_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """A center staff token (analyst, coordinator, admin); entity tokens get 403 (A5)."""
    if not principal.is_staff:
        raise Problem(403, "this route takes a staff token")
    return principal


def admin_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """An admin's token; every other role gets 403."""
    if principal.role is not Role.ADMIN:
        raise Problem(403, "this route takes an admin token")
    return principal


AnyPrincipal = Annotated[Principal, Depends(current_principal)]
AdminPrincipal = Annotated[Principal, Depends(admin_principal)]
EntityPrincipal = Annotated[Principal, Depends(entity_principal)]
StaffPrincipal = Annotated[Principal, Depends(staff_principal)]
