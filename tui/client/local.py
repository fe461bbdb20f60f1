"""The CaseClient on the embedded store: the services built by ``build_services()``.

Single-user (the local operator sees everything); every write goes through a service, so
life cycle rules, timeline entries and audit entries are the same as from the CLI. Reads
the services lack (a page with a total, case sort and offset, top indicators, due-soon
deadlines, entity roll-ups) are read-only queries in :mod:`tui.client.queries`.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from cases.search.query import SearchQuery, parse
from cases.search.service import SearchBackend, search_backend
from cases.services import audit
from cases.services.alert_filter import AlertFilter, parse_query
from cases.services.alerts import AlertService
from cases.services.cases import CaseService
from cases.services.identity import Identity, Principal, Role
from cases.services.picture import PictureService
from cases.services.tasks import TaskService
from cases.services.timeline import TimelineService
from cases.services.triage import DISMISS_REASONS, OPEN_STATUSES, TriageService
from cases.store import Store
from enrichment.intel.matcher import IntelMatcher, parse_value
from enrichment.intel.store import IntelStore
from playbooks.engine import PlaybookEngine
from playbooks.facts import case_facts
from pukara.core.config import Settings
from pukara.core.errors import InvalidInput, PermissionDenied
from pukara.core.schema import utcnow
from pukara.core.taxonomy import Severity
from tui.client import queries
from tui.client.base import EXPORT_FORMATS, AlertQuery, CaseQuery, Page


class CaseServices(Protocol):
    """What LocalClient uses of ``pukara.wiring.Services`` (named here, not imported: the
    composition root is above the TUI)."""

    settings: Settings
    store: Store
    identity: Identity
    alerts: AlertService
    triage: TriageService
    cases: CaseService
    tasks: TaskService
    timeline: TimelineService
    picture: PictureService
    playbooks: PlaybookEngine

    def close(self) -> None:
        """Release the store."""
        ...

Clock = Callable[[], datetime]
MAX_PAGE = 1000


def local_actor() -> audit.Actor:
    """The audit actor of the person at this terminal: ``tui:<login>``."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "operator"
    return audit.Actor(f"tui:{login}")


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be 1..{MAX_PAGE}", field="limit")
    return limit


class LocalClient:
    """CaseClient over the services of the embedded store."""

    def __init__(self, services: CaseServices, *, actor: audit.Actor | None = None,
                 clock: Clock = utcnow) -> None:
        self.services = services
        self.actor = actor or local_actor()
        self.clock = clock
        self._search: SearchBackend | None = None
        self._intel = IntelStore(services.store.engine)
        self._matcher = IntelMatcher(self._intel)

    @property
    def searcher(self) -> SearchBackend:
        """The search backend (FTS5 index installed on first use)."""
        if self._search is None:
            self._search = search_backend(self.services.store, self.services.settings)
        return self._search

    def _index_for(self, parsed: SearchQuery) -> None:
        """Make sure the FTS index exists when the query needs it (words, observables);
        plain field filters never wait for a first-time index build."""
        if parsed.text or parsed.values("observable") or parsed.values("observable",
                                                                          negate=True):
            self.searcher  # noqa: B018 - built (and the index installed) on first use

    # -- dashboard -------------------------------------------------------------------
    def dashboard(self, now: datetime) -> dict[str, Any]:
        """The picture service's aggregates plus deadlines, top indicators and totals."""
        picture = self.services.picture
        board = picture.dashboard(now)
        with self.services.store.read() as conn:
            board["deadlines"] = queries.deadline_lists(picture, conn, now)
            board["top_indicators"] = queries.top_indicators(conn)
            board["alerts_total"] = self.services.alerts.count()
        return board

    # -- alerts ----------------------------------------------------------------------
    def alert_page(self, query: AlertQuery) -> Page:
        """A page of alerts matching the search syntax (``status:new severity:>=high``)."""
        parsed = parse(query.text, now=self.clock())
        self._index_for(parsed)
        with self.services.store.read() as conn:
            return queries.alert_page(conn, parsed, query.sort, query.offset,
                                      _limit(query.limit))

    def alert_groups(self, text: str, limit: int = 500) -> list[dict[str, Any]]:
        """The triage service's groups for a field-filter query (open queue by default)."""
        try:
            selection = parse_query(text, AlertFilter(statuses=OPEN_STATUSES))
        except InvalidInput as exc:
            raise InvalidInput(f"the group view takes field filters only ({exc.message})",
                               field="query") from None
        return [g.as_dict() for g in self.services.triage.groups(selection)[:limit]]

    def alert(self, alert_id: int) -> dict[str, Any]:
        """One alert with its document and raw record."""
        return self.services.alerts.get(alert_id)

    def acknowledge(self, ids: list[int]) -> list[int]:
        """new → acknowledged."""
        return self.services.triage.acknowledge(AlertFilter(ids=tuple(ids)), self.actor)

    def dismiss(self, ids: list[int], reason: str) -> list[int]:
        """→ dismissed with a reason."""
        return self.services.triage.dismiss(AlertFilter(ids=tuple(ids)), reason, self.actor)

    def dismiss_reasons(self) -> tuple[str, ...]:
        """The dismissal reasons of the triage service."""
        return DISMISS_REASONS

    def promote(self, ids: list[int], title: str | None = None) -> dict[str, Any]:
        """A new case with these alerts."""
        return self.services.cases.promote(AlertFilter(ids=tuple(ids)), self.actor,
                                           title=title)

    def add_to_case(self, ids: list[int], case_ref: str) -> dict[str, Any]:
        """These alerts merged into an open case."""
        return self.services.cases.promote(AlertFilter(ids=tuple(ids)), self.actor,
                                           case_ref=case_ref)

    # -- cases -----------------------------------------------------------------------
    def case_page(self, query: CaseQuery) -> Page:
        """A page of cases matching the search syntax."""
        parsed = parse(query.text, now=self.clock())
        self._index_for(parsed)
        with self.services.store.read() as conn:
            return queries.case_page(conn, parsed, status=query.status,
                                     include_closed=query.include_closed, sort=query.sort,
                                     offset=query.offset, limit=_limit(query.limit))

    def case(self, case_ref: str) -> dict[str, Any]:
        """The full case view, each linked alert's hits added for the observables tab."""
        return self.services.cases.get(case_ref)

    def update_case(self, case_ref: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change fields of an open case."""
        return self.services.cases.update(case_ref, changes, self.actor)

    def set_task_status(self, task_id: str, status: str) -> dict[str, Any]:
        """Move a task to ``status``."""
        return self.services.tasks.set_status(task_id, status, self.actor)

    def reassign_task(self, task_id: str, owner: str) -> dict[str, Any]:
        """Give a task to ``owner`` (timeline and audit entries by the task service)."""
        return self.services.tasks.reassign(task_id, owner, self.actor)

    def add_note(self, case_ref: str, text: str) -> dict[str, Any]:
        """An analyst timeline entry."""
        return self.services.timeline.note(case_ref, text, self.actor)

    def add_comment(self, case_ref: str, text: str) -> dict[str, Any]:
        """A comment."""
        return self.services.timeline.comment(case_ref, text, self.actor)

    def export_case(self, case_ref: str, fmt: str) -> str:
        """The case as MISP JSON, a STIX bundle or a Markdown report (share recorded)."""
        from cases.sharing.case_data import load_case, record_share
        from cases.sharing.markdown_report import export_report
        from cases.sharing.misp_export import build_event
        from cases.sharing.stix_export import export_bundle

        if fmt not in EXPORT_FORMATS:
            raise InvalidInput(f"format must be one of {', '.join(EXPORT_FORMATS)}",
                               field="format")
        store, settings = self.services.store, self.services.settings
        export = load_case(store, case_ref)
        if fmt == "misp":
            event = build_event(export)
            record_share(store, self.actor, export, "misp-file",
                         details={"attributes": len(event.event.attributes),
                                  "excluded": len(event.excluded)})
            return str(event.event.to_json(indent=2))
        if fmt == "stix":
            bundle = export_bundle(store, export, settings.center_name, self.actor, None)
            return str(bundle.bundle.serialize(pretty=True))
        return export_report(store, export, settings.regime(), self.actor, None)

    # -- playbooks (every change through the engine) -----------------------------------
    def principal(self) -> Principal:
        """The person at this terminal as a principal: the role of the registered user of
        the same name (``tui:`` prefix dropped), an analyst when none is registered;
        a disabled account may not act."""
        name = self.actor.name.removeprefix("tui:")
        for user in self.services.identity.users():
            if user["name"] == name:
                if user["disabled"]:
                    raise PermissionDenied(f"user {name!r} is disabled")
                return Principal(Role(user["role"]), 0, user=self.actor.name)
        return Principal(Role.ANALYST, 0, user=self.actor.name)

    def playbooks(self, case_ref: str | None = None) -> list[dict[str, Any]]:
        """The engine's library, matching the case first when one is given."""
        facts = None
        if case_ref is not None:
            with self.services.store.read() as conn:
                facts = case_facts(conn, case_ref)
        rows = []
        for playbook_id, book in sorted(self.services.playbooks.playbooks.items()):
            row: dict[str, Any] = {
                "id": playbook_id, "title": book.title, "version": book.version,
                "auto_start": book.auto_start,
                "inputs": [i.name for i in book.inputs if i.default is None]}
            if facts is not None:
                row["matches"] = book.when.matches(facts["classification"],
                                                   Severity(facts["severity"]),
                                                   facts["sectors"])
            rows.append(row)
        return sorted(rows, key=lambda r: not r.get("matches", False))

    def playbook_status(self, case_ref: str) -> list[dict[str, Any]]:
        """The runs on a case with their steps."""
        return self.services.playbooks.status(case_ref)

    def playbook_start(self, playbook_id: str, case_ref: str) -> dict[str, Any]:
        """Start a playbook by hand (the engine advances it at once)."""
        run_id = self.services.playbooks.start(playbook_id, case_ref, self.actor)
        return self.services.playbooks.run_view(run_id)

    def playbook_step_done(self, run_id: str, step_id: str) -> dict[str, Any]:
        """Complete a waiting manual step's task through the engine."""
        self.services.playbooks.complete_task(run_id, step_id, self.actor)
        return self.services.playbooks.run_view(run_id)

    def playbook_approve(self, run_id: str, step_id: str, comment: str = "") -> dict[str, Any]:
        """Approve as :meth:`principal` (the engine refuses a role that may not)."""
        self.services.playbooks.approve(run_id, step_id, self.principal(), note=comment)
        return self.services.playbooks.run_view(run_id)

    def playbook_retry(self, run_id: str, step_id: str) -> dict[str, Any]:
        """Retry a failed step through the engine."""
        self.services.playbooks.retry(run_id, step_id, self.actor)
        return self.services.playbooks.run_view(run_id)

    # -- entities, intel, search -----------------------------------------------------
    def entities(self) -> list[dict[str, Any]]:
        """The constituency with open cases and incidents per entity."""
        with self.services.store.read() as conn:
            counts = queries.open_counts(conn)
        return [{"id": e.id, "name": e.name, "sector": e.sector, "criticality": e.criticality,
                 "open_cases": counts["cases"].get(e.id, 0),
                 "open_incidents": counts["incidents"].get(e.id, 0)}
                for e in self.services.identity.entities()]

    def entity(self, entity_id: str) -> dict[str, Any]:
        """One entity: registry fields, contacts, open incidents, compliance."""
        found = self.services.identity.entity(entity_id).model_dump(mode="json")
        compliance = self.services.picture.compliance(self.clock())["by_entity"]
        with self.services.store.read() as conn:
            found["open_incidents"] = queries.entity_incidents(conn, entity_id)
            found["open_cases"] = queries.open_counts(conn)["cases"].get(entity_id, 0)
        found["compliance"] = compliance.get(entity_id)
        return found

    def intel_lookup(self, value: str) -> dict[str, Any]:
        """Indicator hits for a value and where it was seen (alerts and cases)."""
        _, normal = parse_value(value)
        hits = [hit.model_dump(mode="json") for hit in self._matcher.match_value(normal)]
        seen = self.searcher.search(_observable_query(normal), None, limit=50)
        return {"value": normal, "hits": hits, "seen": seen}

    def intel_stats(self) -> dict[str, Any]:
        """The intel store's counts."""
        stats = self._intel.stats(self.clock())
        for source in stats["sources"]:
            when = source["last_sync_at"]
            source["last_sync_at"] = when.isoformat() if when else None
        return stats

    def search(self, text: str, limit: int = 50) -> dict[str, list[dict[str, Any]]]:
        """Alerts and cases for the search syntax."""
        return self.searcher.search(parse(text, now=self.clock()), None, limit=limit)

    def close(self) -> None:
        """Close the store."""
        self.services.close()


def _observable_query(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'observable:"{escaped}"'


__all__ = ["LocalClient", "local_actor"]
