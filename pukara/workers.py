"""The background work of a running center: start playbooks on new cases, advance playbook
runs, deliver notifications, index new alerts into the embedded FTS5 index (SQLite; bounded
transactions, so ingest never waits long), and drain the search outbox to Elasticsearch when
configured.

One daemon thread runs every pass; a failing step is logged and retried on the next pass
(a briefly locked database or an unreachable cluster never stops the others for good).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from cases.search.fts_indexer import catch_up
from cases.store.tables_cases import cases
from playbooks.background import PlaybookBackground
from pukara.core.schema import utcnow
from pukara.wiring import Services

if TYPE_CHECKING:
    from cases.search.elastic import OutboxWorker

log = logging.getLogger(__name__)
CATCH_UP = timedelta(days=7)
#: alerts indexed for search per background pass: after a bulk import the index catches up
#: over several passes (~1.5 s each) instead of holding up the next pass's jobs in one long one
INDEX_ROWS_PER_PASS = 100_000


class NewCaseWatcher:
    """Calls ``playbooks.on_case_opened`` once for every case opened since it last looked.

    On its first pass it looks back ``CATCH_UP`` (cases opened while nothing ran); starting
    a playbook twice is refused by the engine and notices are keyed, so overlap is harmless.
    """

    def __init__(self, services: Services, since: datetime | None = None) -> None:
        self.services = services
        self.since = since if since is not None else utcnow() - CATCH_UP
        self.started = 0

    def run_pass(self) -> list[str]:
        """Start what matches on the cases opened since the last pass; returns run ids."""
        query = select(cases.c.id, cases.c.created_at).where(
            cases.c.created_at >= self.since, cases.c.merged_into.is_(None)
        ).order_by(cases.c.created_at)
        with self.services.store.read() as conn:
            rows = conn.execute(query).all()
        runs: list[str] = []
        for row in rows:
            runs.extend(self.services.playbooks.on_case_opened(row.id))
            self.since = max(self.since, row.created_at)
        self.started += len(runs)
        return runs


class DeadlineReminders:
    """Queues a "please send the <stage>" message for every reporting deadline due soon or
    overdue, once per (incident, stage, deadline), in the transaction that claims it."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def run_pass(self) -> int:
        """Claim and queue what is due; returns how many reminders were queued."""
        outbox = self.services.notifications.outbox
        center = self.services.settings.center_name
        with self.services.store.write() as conn:
            claimed = self.services.picture.claim_reminders(conn)
            for reminder in claimed:
                outbox.enqueue(conn, "report-update", key=reminder.key,
                               entity_id=reminder.entity_id, values={
                                   "center": center, "stage": reminder.stage,
                                   "case_number": reminder.tracking_number,
                                   "case_title": reminder.tracking_number,
                                   "due": reminder.deadline.isoformat(),
                                   "message": f"Deadline state: {reminder.state}.",
                               })
        return len(claimed)


class BackgroundWorkers(PlaybookBackground):
    """Everything a server process does besides answering requests: the playbook loop's jobs
    plus playbooks started on new cases, deadline reminders, the FTS5 alert index catch-up
    and the search outbox."""

    thread_name = "pukara-workers"

    def __init__(self, services: Services, interval: float = 5.0) -> None:
        super().__init__(services.playbooks, services.notifications.worker, interval=interval)
        self.services = services
        self.cases = NewCaseWatcher(services)
        self.reminders = DeadlineReminders(services)
        self.search = _search_outbox(services)

    def run_pass(self) -> None:
        """One pass of every job."""
        try:
            self.cases.run_pass()
        except Exception:
            log.exception("starting playbooks on new cases failed; retrying next pass")
        try:
            self.reminders.run_pass()
        except Exception:
            log.exception("queueing deadline reminders failed; retrying next pass")
        super().run_pass()
        try:
            catch_up(self.services.store, most=INDEX_ROWS_PER_PASS)
        except Exception:
            log.exception("indexing new alerts for search failed; retrying next pass")
        if self.search is not None:
            try:
                self.search.drain()
            except Exception:
                log.exception("search outbox drain failed; the backlog waits")


def _search_outbox(services: Services) -> OutboxWorker | None:
    """The Elasticsearch outbox drainer, with triggers and index templates in place."""
    url = services.settings.elasticsearch_url
    if not url:
        return None
    from cases.search.elastic import OutboxWorker, ensure_templates, es_client
    from cases.search.outbox import install_outbox_triggers

    with services.store.write() as conn:
        install_outbox_triggers(conn)
    client = es_client(url)
    try:
        ensure_templates(client)
    except Exception:
        log.exception("index templates not installed yet (cluster unreachable?)")
    return OutboxWorker(services.store, client)
