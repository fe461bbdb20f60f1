"""Delivery channels: e-mail over SMTP, signed webhooks, the entity API inbox.

Each channel delivers one outbox row and raises :class:`DeliveryFailed` when it could not.
Every delivery carries the row's ``message_id`` as the receiver's idempotency key (the
``Message-ID`` header of the mail; ``Idempotency-Key`` of the webhook; the unique key of the
inbox row), so a redelivery after a crash can be recognised.

E-mail headers are built with ``email.message.EmailMessage`` under ``email.policy.SMTP``;
subjects are folded to one line and addresses were checked when queued, and a value that
still holds CR or LF is refused (SECURITY D11). Webhooks are POSTed with
``X-Pukara-Signature: sha256=HMAC(secret, "<timestamp>.<body>")`` and ``X-Pukara-Timestamp``;
the host is resolved once, every address must be public unless the administrator allowed
internal ones for that webhook, and the connection goes to the pinned address (SECURITY G1).
Redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson
from sqlalchemy import Connection, RowMapping
from sqlalchemy.dialects import postgresql, sqlite

from playbooks.notify.config import NotifyConfig, SmtpConfig, WebhookConfig
from playbooks.tables import inbox_messages
from pukara.core.schema import utcnow

SIGNATURE_HEADER = "X-Pukara-Signature"
TIMESTAMP_HEADER = "X-Pukara-Timestamp"


class DeliveryFailed(Exception):
    """A channel could not deliver this time; ``permanent`` means retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Channel(Protocol):
    """Delivers one outbox row."""

    def deliver(self, row: RowMapping) -> None: ...


def _no_newlines(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise DeliveryFailed(f"header {name} holds CR or LF: refused", permanent=True)
    return value


def build_email(row: RowMapping, sender: str) -> EmailMessage:
    """The RFC 5322 message of an outbox row."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = _no_newlines("From", sender)
    message["To"] = _no_newlines("To", row["recipient"])
    message["Subject"] = _no_newlines("Subject", row["subject"])
    message["Message-ID"] = _no_newlines("Message-ID", row["message_id"])
    message["X-Pukara-Kind"] = row["kind"]
    message.set_content(row["body"])
    return message


class EmailChannel:
    """SMTP through the configured relay (stdlib ``smtplib``)."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    def deliver(self, row: RowMapping) -> None:
        """Send one message; SMTP errors become :class:`DeliveryFailed`."""
        if not self.config.host:
            raise DeliveryFailed("no SMTP relay configured (notify.toml [smtp] host)")
        message = build_email(row, self.config.sender)
        try:
            with smtplib.SMTP(self.config.host, self.config.port,
                              timeout=self.config.timeout_seconds) as client:
                if self.config.starttls:
                    client.starttls(context=ssl.create_default_context())
                if self.config.username:
                    client.login(self.config.username, self.config.password.get_secret_value())
                client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed(f"recipient refused: {exc.recipients}", permanent=True) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"SMTP: {type(exc).__name__}: {exc}") from exc


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``"<timestamp>." + body``."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body,
                                hashlib.sha256).hexdigest()


Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def pinned_address(url: str, allow_internal: bool, resolver: Resolver) -> tuple[str, int, str]:
    """(address, port, host) to connect to; internal addresses refused unless allowed."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolver(host, port)
    except OSError as exc:
        raise DeliveryFailed(f"cannot resolve {host}: {exc}") from exc
    if not addresses:
        raise DeliveryFailed(f"{host} has no address")
    for address in addresses:
        if not allow_internal and not ipaddress.ip_address(address).is_global:
            raise DeliveryFailed(f"{host} resolves to internal address {address}: refused "
                                 "(an administrator may allow it for this webhook)",
                                 permanent=True)
    return addresses[0], port, host


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a pinned address, with SNI and certificate checks for the host name."""

    def __init__(self, address: str, port: int, host: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class WebhookChannel:
    """HTTP POST with an HMAC-SHA256 signature per webhook."""

    def __init__(self, config: NotifyConfig, resolver: Resolver = system_resolver) -> None:
        self.config = config
        self.resolver = resolver

    def deliver(self, row: RowMapping) -> None:
        """POST the message as JSON; a 2xx answer is delivered."""
        hook = self.config.webhook(row["recipient"])
        if hook is None:
            raise DeliveryFailed(f"no webhook named {row['recipient']!r}", permanent=True)
        body = orjson.dumps({"id": row["message_id"], "kind": row["kind"],
                             "entity_id": row["entity_id"], "case_id": row["case_id"],
                             "language": row["language"], "subject": row["subject"],
                             "body": row["body"]})
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "Idempotency-Key": row["message_id"],
                   TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: sign(hook.secret.get_secret_value().encode(), timestamp,
                                          body)}
        status = self._post(hook, body, headers)
        if 300 <= status < 400:
            raise DeliveryFailed(f"webhook {hook.name} answered {status}: redirects are not "
                                 "followed (SECURITY G1); fix the configured URL",
                                 permanent=True)
        if not 200 <= status < 300:
            raise DeliveryFailed(f"webhook {hook.name} answered {status}",
                                 permanent=400 <= status < 500 and status not in (408, 429))

    def _post(self, hook: WebhookConfig, body: bytes, headers: dict[str, str]) -> int:
        address, port, host = pinned_address(hook.url, hook.allow_internal, self.resolver)
        parts = urlsplit(hook.url)
        connection: Any
        if parts.scheme == "https":
            connection = _PinnedHTTPS(address, port, host, hook.timeout_seconds)
        else:
            connection = http.client.HTTPConnection(address, port, timeout=hook.timeout_seconds)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("POST", target, body=body,
                               headers={**headers, "Host": parts.netloc})
            response = connection.getresponse()
            response.read(65536)
            return int(response.status)
        except OSError as exc:
            raise DeliveryFailed(f"webhook {hook.name}: {type(exc).__name__}: {exc}") from exc
        finally:
            connection.close()


class InboxChannel:
    """Writes the message into the entity's API inbox, in the worker's mark-sent transaction,
    so an inbox message is stored exactly once."""

    transactional = True

    def deliver(self, row: RowMapping) -> None:
        """Nothing outside the database: the work happens in :meth:`deliver_in`."""

    @staticmethod
    def deliver_in(conn: Connection, row: RowMapping) -> None:
        """Insert the inbox row; a second delivery of the same message adds nothing."""
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(insert(inbox_messages).values(
            message_id=row["message_id"], entity_id=row["recipient"], kind=row["kind"],
            case_id=row["case_id"], subject=row["subject"], body=row["body"],
            created_at=utcnow(), read_at=None,
        ).on_conflict_do_nothing(index_elements=[inbox_messages.c.message_id]))
