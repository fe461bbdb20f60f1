"""What the analyst routes are built from: the services (handed in by the app factory) and
the lazily built search backend and intel matcher.

The services are named as a Protocol, not imported from ``pukara.wiring``: the
composition root is above ``cases`` and hands its ``Services`` in (it matches structurally).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from cases.search.query import SearchQuery
from cases.search.service import SearchBackend, catch_up, search_backend
from cases.services import audit
from cases.services.advisories import AdvisoryService
from cases.services.alerts import AlertService
from cases.services.case_merge import CaseMergeService
from cases.services.cases import CaseService
from cases.services.identity import Identity, Principal
from cases.services.incidents import IncidentService
from cases.services.picture import PictureService
from cases.services.tasks import TaskService
from cases.services.timeline import TimelineService
from cases.services.triage import TriageService
from cases.store import Store
from enrichment.intel.matcher import IntelMatcher
from enrichment.intel.store import IntelStore
from pukara.core.config import Settings
from pukara.core.schema import utcnow

Clock = Callable[[], datetime]


class AnalystServices(Protocol):
    """The services the analyst routes call (``pukara.wiring.Services`` has them all)."""

    settings: Settings
    store: Store
    identity: Identity
    alerts: AlertService
    triage: TriageService
    cases: CaseService
    case_merge: CaseMergeService
    tasks: TaskService
    timeline: TimelineService
    picture: PictureService
    incidents: IncidentService
    advisories: AdvisoryService


class AnalystContext:
    """The services plus the search backend and intel matcher, built on first use."""

    def __init__(self, services: AnalystServices, *, clock: Clock = utcnow) -> None:
        self.services = services
        self.clock = clock
        self._lock = threading.Lock()
        self._search: SearchBackend | None = None
        self.intel = IntelStore(services.store.engine)
        self.matcher = IntelMatcher(self.intel)

    @property
    def searcher(self) -> SearchBackend:
        """The configured search backend (the FTS5 index installed on first use)."""
        with self._lock:
            if self._search is None:
                self._search = search_backend(self.services.store, self.services.settings)
            return self._search

    def index_for(self, parsed: SearchQuery) -> None:
        """Make sure the FTS index exists when the query needs it (words, observables)."""
        if parsed.text or parsed.values("observable") or parsed.values("observable",
                                                                          negate=True):
            self.searcher  # noqa: B018 - built (and the index installed) on first use
            catch_up(self.services.store)


def actor_of(principal: Principal) -> audit.Actor:
    """The audit actor of one request by ``principal`` (a fresh request id)."""
    return principal.actor(uuid.uuid4().hex)
