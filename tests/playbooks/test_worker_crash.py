"""The outbox worker killed mid-delivery: SIGKILL after the SMTP server accepted the DATA but
before the worker marked the message sent. After a restart every notification has reached
its receiver exactly once *as the receiver counts* — by Message-ID, which a redelivery keeps
(the guarantee is at-least-once delivery with a stable idempotency key; see
``playbooks.notify.worker``). Inbox messages, written in the mark-sent transaction, are stored
exactly once outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from playbooks.notify import build_notifications
from playbooks.notify.config import load_notify_config
from playbooks.notify.worker import FAULT_ENV, OutboxWorker
from playbooks.tables import inbox_messages, outbox
from pukara.core.schema import utcnow
from tests.playbooks.kit import (
    ESSALUD_MAIL,
    MINSA_MAIL,
    built,  # noqa: F401 - fixture
    open_case,
)
from tests.playbooks.receivers import smtp_server  # noqa: F401

DELIVER = "import sys; from pukara.cli import main; sys.exit(main(['playbook', 'deliver']))"


def test_worker_killed_after_data_before_mark(built, shared_data: Path, smtp_server,  # noqa: F811
                                               pukara_home: Path) -> None:
    (pukara_home / "notify.toml").write_text(
        f'lease_seconds = 30\n[smtp]\nhost = "127.0.0.1"\nport = {smtp_server.port}\n'
        'sender = "cnsd@gob.pe"\n')
    case = built.cases.get(open_case(built, shared_data / "shadowserver" / "phish_url.csv"))
    notes = build_notifications(built.store, pukara_home)
    values = {"center": "CNSD", "case_number": case["number"], "case_title": case["title"],
              "headline": "block the phishing links", "message": "Block them."}
    with built.store.write() as conn:
        for key, entity in (("a", "minsa"), ("b", "essalud"), ("c", "minsa")):
            notes.outbox.enqueue(conn, "entity-notice", key=key, entity_id=entity,
                                 values=values, case_id=case["id"])

    worker = subprocess.Popen(
        [sys.executable, "-c", DELIVER], cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PUKARA_HOME": str(pukara_home),
             FAULT_ENV: "pause-after-deliver:email"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert smtp_server.log.arrived.wait(timeout=90), "the worker never delivered"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL
    first_id = smtp_server.log.message_ids()[0]
    with built.store.read() as conn:
        stuck = conn.execute(select(outbox).where(outbox.c.message_id == first_id)
                             ).mappings().one()
    assert (stuck["state"], stuck["attempts"], stuck["recipient"]) == ("sending", 1, MINSA_MAIL)

    restarted = OutboxWorker(built.store, load_notify_config(pukara_home),
                             notes.worker.channels,
                             clock=lambda: utcnow() + timedelta(seconds=31))
    assert restarted.run_once().sent == 5
    assert restarted.run_once().sent == 0

    with built.store.read() as conn:
        rows = conn.execute(select(outbox.c.channel, outbox.c.message_id, outbox.c.state,
                                   outbox.c.recipient)).all()
        inbox_count = conn.execute(select(func.count()).select_from(inbox_messages)
                                   ).scalar_one()
    mail_ids = {r.message_id for r in rows if r.channel == "email"}
    arrivals = Counter(smtp_server.log.message_ids())
    assert set(arrivals) == mail_ids
    assert len(mail_ids) == 3
    assert arrivals[first_id] == 2
    assert sorted(arrivals.values()) == [1, 1, 2]
    assert {r.state for r in rows} == {"sent"}
    assert sorted(r.recipient for r in rows if r.channel == "email") == sorted(
        [MINSA_MAIL, MINSA_MAIL, ESSALUD_MAIL])
    assert inbox_count == 3
