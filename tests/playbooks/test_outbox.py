"""The outbox and its channels against real receivers on loopback: SMTP (aiosmtpd), an HTTP
webhook receiver (stdlib), the entity API inbox; caps (C5), header injection (D11), internal
webhook targets (G1)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from pydantic import SecretStr
from sqlalchemy import select, update

from cases.services.identity import Principal, Role
from cases.store.tables import audit_log
from playbooks.notify import build_notifications
from playbooks.notify.channels import DeliveryFailed, build_email, pinned_address
from playbooks.notify.config import NotifyConfig, SmtpConfig, WebhookConfig
from playbooks.notify.outbox import checked_address
from playbooks.notify.worker import OutboxWorker
from playbooks.tables import outbox
from pukara.core.errors import InvalidInput, PermissionDenied
from pukara.core.schema import utcnow
from tests.playbooks.kit import (
    ESSALUD_MAIL,
    MINSA_MAIL,
    built,  # noqa: F401 - fixture
    open_case,
)
from tests.playbooks.receivers import free_port, http_server, smtp_server  # noqa: F401

SECRET = "whsec-test-only"


def notice(case: dict, headline: str = "isolate affected systems") -> dict[str, str]:
    """Template fields of an entity notice about ``case``."""
    return {"center": "CNSD", "case_number": case["number"], "case_title": case["title"],
            "classification": case["classification"], "severity": case["severity"],
            "tlp": case["tlp"], "headline": headline, "message": "Disconnect them now."}


@pytest.fixture
def case(built, shared_data: Path) -> dict:  # noqa: F811
    case_id = open_case(built, shared_data / "shadowserver" / "event4_sinkhole.csv")
    return built.cases.get(case_id)


def test_email_over_real_smtp_exactly_once(built, case, smtp_server) -> None:  # noqa: F811
    config = NotifyConfig(smtp=SmtpConfig(host="127.0.0.1", port=smtp_server.port,
                                          sender="cnsd@gob.pe"))
    notes = build_notifications(built.store, built.settings.home, config)
    with built.store.write() as conn:
        for entity in ("minsa", "essalud"):
            notes.outbox.enqueue(conn, "entity-notice", key=f"test:{entity}", entity_id=entity,
                                 values=notice(case), case_id=case["id"])
    assert notes.worker.run_once().sent == 4
    assert notes.worker.run_once().sent == 0
    with built.store.read() as conn:
        rows = {r.recipient: r for r in conn.execute(select(outbox).where(
            outbox.c.channel == "email"))}
    assert [rcpts for rcpts, _ in smtp_server.log.received] == [[MINSA_MAIL], [ESSALUD_MAIL]]
    assert smtp_server.log.message_ids() == [rows[MINSA_MAIL].message_id,
                                             rows[ESSALUD_MAIL].message_id]
    spanish, english = (message for _, message in smtp_server.log.received)
    assert spanish["Subject"] == f"CNSD: isolate affected systems (caso {case['number']})"
    assert spanish.get_content().startswith("Estimado equipo de Ministerio de Salud:")
    assert english["Subject"] == f"CNSD: isolate affected systems (case {case['number']})"
    assert english.get_content().startswith("Hello EsSalud,")
    assert {r.state for r in rows.values()} == {"sent"}


def test_smtp_down_then_up_is_retried_with_backoff(built, case, smtp_server) -> None:  # noqa: F811
    closed = free_port()
    config = NotifyConfig(smtp=SmtpConfig(host="127.0.0.1", port=closed, timeout_seconds=2),
                          backoff_seconds=60)
    notes = build_notifications(built.store, built.settings.home, config)
    with built.store.write() as conn:
        notes.outbox.enqueue(conn, "entity-notice", key="down", entity_id="minsa",
                             values=notice(case), case_id=case["id"])
    result = notes.worker.run_once()
    assert (result.sent, result.retried) == (1, 1)
    with built.store.read() as conn:
        row = conn.execute(select(outbox).where(outbox.c.channel == "email")).mappings().one()
    assert (row["state"], row["attempts"]) == ("pending", 1)
    assert "SMTP: ConnectionRefusedError" in row["last_error"]
    assert row["next_attempt_at"] >= utcnow() + timedelta(seconds=50)
    config.smtp.port = smtp_server.port
    assert notes.worker.run_once().sent == 0
    later = OutboxWorker(built.store, config, notes.worker.channels,
                         clock=lambda: utcnow() + timedelta(minutes=2))
    assert later.run_once().sent == 1
    assert smtp_server.log.message_ids() == [row["message_id"]]


def test_webhook_signed_with_hmac(built, case, http_server) -> None:  # noqa: F811
    port, log = http_server
    hook = WebhookConfig(name="minsa-soar", url=f"http://127.0.0.1:{port}/hooks/pukara?x=1",
                         secret=SecretStr(SECRET), entity_id="minsa", allow_internal=True)
    notes = build_notifications(built.store, built.settings.home, NotifyConfig(webhooks=[hook]))
    with built.store.write() as conn:
        notes.outbox.enqueue(conn, "entity-notice", key="hook", entity_id="minsa",
                             values=notice(case), case_id=case["id"])
    result = notes.worker.run_once()
    assert (result.sent, result.retried) == (2, 1)
    [(path, headers, body)] = log.received
    assert path == "/hooks/pukara?x=1"
    expected = hmac.new(SECRET.encode(), headers["X-Pukara-Timestamp"].encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    assert headers["X-Pukara-Signature"] == f"sha256={expected}"
    document = orjson.loads(body)
    assert headers["Idempotency-Key"] == document["id"]
    assert (document["kind"], document["entity_id"], document["case_id"]) == (
        "entity-notice", "minsa", case["id"])
    forged = hmac.new(b"wrong", headers["X-Pukara-Timestamp"].encode() + b"." + body,
                      hashlib.sha256).hexdigest()
    assert headers["X-Pukara-Signature"] != f"sha256={forged}"


def test_webhook_to_internal_address_refused_unless_allowed(built, case, http_server) -> None:  # noqa: F811
    port, log = http_server
    hook = WebhookConfig(name="lab", url=f"http://127.0.0.1:{port}/", secret=SecretStr(SECRET))
    notes = build_notifications(built.store, built.settings.home, NotifyConfig(webhooks=[hook]))
    with built.store.write() as conn:
        notes.outbox.enqueue(conn, "approval-needed", key="g1", entity_id=None,
                             values={"case_number": case["number"], "prompt": "ok?"})
    assert notes.worker.run_once().dead == 1
    assert log.received == []
    with built.store.read() as conn:
        row = conn.execute(select(outbox)).mappings().one()
        dead = conn.execute(select(audit_log.c.details).where(
            audit_log.c.action == "notify.dead")).scalar_one()
    assert row["state"] == "dead"
    assert "resolves to internal address 127.0.0.1: refused" in row["last_error"]
    assert dead["channel"] == "webhook"
    for address in ("10.1.2.3", "169.254.169.254", "::1", "192.168.0.7"):
        with pytest.raises(DeliveryFailed, match="internal address"):
            pinned_address("https://hooks.example.org/x", False, lambda h, p, a=address: [a])
    assert pinned_address("https://hooks.example.org:8443/x", False,
                          lambda h, p: ["9.9.9.9", "8.8.8.8"]) == (
        "9.9.9.9", 8443, "hooks.example.org")


def test_webhook_connects_to_the_pinned_address(built, case, http_server) -> None:  # noqa: F811
    port, log = http_server
    hook = WebhookConfig(name="named", url=f"http://receiver.invalid:{port}/in",
                         secret=SecretStr(SECRET), entity_id="minsa", allow_internal=True)
    notes = build_notifications(built.store, built.settings.home, NotifyConfig(webhooks=[hook]))
    notes.worker.channels["webhook"].resolver = lambda host, p: ["127.0.0.1"]
    with built.store.write() as conn:
        notes.outbox.enqueue(conn, "entity-notice", key="pin", entity_id="minsa",
                             values=notice(case), case_id=case["id"])
    notes.worker.run_once()
    [(_, headers, _)] = log.received
    assert headers["Host"] == f"receiver.invalid:{port}"


def test_inbox_exactly_once_and_only_for_its_entity(built, case) -> None:  # noqa: F811
    notes = build_notifications(built.store, built.settings.home, NotifyConfig())
    with built.store.write() as conn:
        notes.outbox.enqueue(conn, "entity-notice", key="inbox", entity_id="minsa",
                             values=notice(case), case_id=case["id"])
        notes.outbox.enqueue(conn, "entity-notice", key="inbox", entity_id="minsa",
                             values=notice(case), case_id=case["id"])
    notes.worker.run_once()
    with built.store.write() as conn:
        conn.execute(update(outbox).where(outbox.c.channel == "inbox").values(
            state="sending", lease_until=utcnow() - timedelta(seconds=1)))
    assert notes.worker.run_once().sent == 1
    minsa = notes.outbox.inbox_for(Principal(Role.REPORTER, 1, entity_id="minsa"))
    assert [(m["kind"], m["case_id"]) for m in minsa] == [("entity-notice", case["id"])]
    assert minsa[0]["subject"] == f"CNSD: isolate affected systems (caso {case['number']})"
    assert notes.outbox.inbox_for(Principal(Role.REPORTER, 2, entity_id="bcrp")) == []
    with pytest.raises(PermissionDenied):
        notes.outbox.inbox_for(Principal(Role.ANALYST, 3, user="ana"))


def test_per_recipient_cap_keeps_and_audits(built, case) -> None:  # noqa: F811
    notes = build_notifications(built.store, built.settings.home,
                                NotifyConfig(per_recipient_per_hour=2))
    with built.store.write() as conn:
        for loop in range(4):
            notes.outbox.enqueue(conn, "entity-notice", key=f"loop:{loop}", entity_id="minsa",
                                 values=notice(case), case_id=case["id"])
    with built.store.read() as conn:
        mail = [r.state for r in conn.execute(select(outbox.c.state).where(
            outbox.c.channel == "email").order_by(outbox.c.id))]
        capped = conn.execute(select(audit_log.c.object_id, audit_log.c.details).where(
            audit_log.c.action == "notify.capped")).all()
    assert mail == ["pending", "pending", "capped", "capped"]
    assert [(c.object_id, c.details["per_hour"]) for c in capped] == [(MINSA_MAIL, 2)] * 2
    assert notes.outbox.states() == {"pending": 6, "capped": 2}


def test_header_injection_is_folded_or_refused(built, case, smtp_server) -> None:  # noqa: F811
    config = NotifyConfig(smtp=SmtpConfig(host="127.0.0.1", port=smtp_server.port))
    notes = build_notifications(built.store, built.settings.home, config)
    with built.store.write() as conn:
        notes.outbox.enqueue(conn, "entity-notice", key="crlf", entity_id="minsa",
                             values=notice(case, "urgent\r\nBcc: victim@evil.example"),
                             case_id=case["id"])
    notes.worker.run_once()
    [(rcpts, message)] = smtp_server.log.received
    assert rcpts == [MINSA_MAIL]
    assert message["Bcc"] is None
    assert message["Subject"] == (f"CNSD: urgent Bcc: victim@evil.example "
                                  f"(caso {case['number']})")
    for bad in ("a@b.example\r\nBcc: c@d.example", "a@b.example\nX: y"):
        with pytest.raises(InvalidInput, match="CR, LF"):
            checked_address(bad)
    row = {"recipient": MINSA_MAIL, "subject": "x\r\nBcc: e@f.example", "message_id": "<m@x>",
           "kind": "entity-notice", "body": "b"}
    with pytest.raises(DeliveryFailed, match="CR or LF") as caught:
        build_email(row, "cnsd@gob.pe")  # type: ignore[arg-type]
    assert caught.value.permanent


def test_webhook_redirect_is_not_followed(built, case, http_server) -> None:  # noqa: F811
    port, log = http_server
    log.status = 302
    hook = WebhookConfig(name="moved", url=f"http://127.0.0.1:{port}/old", entity_id="minsa",
                         secret=SecretStr(SECRET), allow_internal=True)
    notes = build_notifications(built.store, built.settings.home, NotifyConfig(webhooks=[hook]))
    with built.store.write() as conn:
        notes.outbox.enqueue(conn, "entity-notice", key="redirect", entity_id="minsa",
                             values=notice(case), case_id=case["id"])
    assert notes.worker.run_once().dead == 1
    assert [path for path, _, _ in log.received] == ["/old"]
    with built.store.read() as conn:
        error = conn.execute(select(outbox.c.last_error).where(
            outbox.c.channel == "webhook")).scalar_one()
    assert error == "webhook moved answered 302: redirects are not followed (SECURITY G1); " \
        "fix the configured URL"
