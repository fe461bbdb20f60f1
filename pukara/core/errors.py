"""One error tree for the whole platform.

Every error Pukara raises on purpose derives from :class:`PukaraError`; callers can catch
the branch they care about and the HTTP layer maps each branch to one status code::

    PukaraError
    ├── ConfigError               bad or missing configuration (exit 2 on the CLI)
    ├── InvalidInput              a value, record or document refused; names the field   → 422
    │   ├── UnknownClassification an RSIT class/type that is not in the pinned taxonomy
    │   └── ParseError            a whole report could not be read (unknown format, …)
    ├── AuthenticationFailed      no, bad, revoked or expired credentials                 → 401
    ├── PermissionDenied          authenticated but not allowed (role, TLP)              → 403
    │   └── TLPViolation          a share or export the TLP of the object forbids
    ├── NotFound                  no such object *for this caller* (no existence oracle)  → 404
    ├── Conflict                  state conflict: idempotency key in flight, bad merge     → 409
    │   └── IdempotencyMismatch   the same key with a different payload                   → 422
    ├── PayloadTooLarge           a body, file or field over its cap                      → 413
    ├── RateLimited               too many requests; carries retry_after seconds          → 429
    ├── InsufficientStorage       the disk is full: nothing was acknowledged              → 507
    ├── PluginNotFound            no parser/source/action of that name; lists the known
    ├── StoreError                the database refused or is unsafe (pragmas, integrity)
    │   └── AuditChainBroken      the audit hash chain does not verify; names the index
    └── ExternalServiceError      MISP, Elasticsearch, SMTP … unreachable or refused
"""

from __future__ import annotations


class PukaraError(Exception):
    """Root of every error Pukara raises on purpose."""

    status: int = 500
    title: str = "Internal error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ConfigError(PukaraError):
    """The configuration is missing, malformed or unsafe."""

    title = "Configuration error"


class InvalidInput(PukaraError, ValueError):
    """A value or document was refused; ``field`` names where.

    Also a ValueError, so pydantic reports it with the location of the bad field.
    """

    status = 422
    title = "Invalid input"


class UnknownClassification(InvalidInput):
    """An RSIT class or type outside the pinned taxonomy."""


class ParseError(InvalidInput):
    """A whole report could not be read (individual bad records are ParseFailures)."""


class AuthenticationFailed(PukaraError):
    """No, malformed, unknown, revoked or expired credentials."""

    status = 401
    title = "Unauthorized"


class PermissionDenied(PukaraError):
    """The caller is known but may not do this."""

    status = 403
    title = "Forbidden"


class TLPViolation(PermissionDenied):
    """A share, export or TLP change that the object's TLP forbids."""


class NotFound(PukaraError):
    """No such object for this caller."""

    status = 404
    title = "Not found"


class Conflict(PukaraError):
    """The request conflicts with the current state."""

    status = 409
    title = "Conflict"


class IdempotencyMismatch(Conflict):
    """An Idempotency-Key reused with a different payload."""

    status = 422
    title = "Idempotency key reused with a different request"


class PayloadTooLarge(PukaraError):
    """A body, file or field above its configured cap."""

    status = 413
    title = "Payload too large"


class RateLimited(PukaraError):
    """Too many requests for this token or address."""

    status = 429
    title = "Too many requests"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InsufficientStorage(PukaraError):
    """No space left to store what was sent; nothing of it was kept."""

    status = 507
    title = "Insufficient storage"


class PluginNotFound(PukaraError):
    """No plugin of that name; the message lists the installed ones."""

    status = 422
    title = "Unknown plugin"


class StoreError(PukaraError):
    """The database refused an operation or is not in a safe state."""

    title = "Store error"


class AuditChainBroken(StoreError):
    """The audit log's hash chain does not verify."""

    def __init__(self, message: str, *, index: int) -> None:
        super().__init__(message)
        self.index = index


class ExternalServiceError(PukaraError):
    """An external service (MISP, Elasticsearch, SMTP, webhook) failed."""

    status = 502
    title = "External service error"
