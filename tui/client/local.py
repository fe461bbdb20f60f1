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
from cases.search.service import SearchBackend, catch_up, search_backend
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
from pukara.core.config import Settings
from pukara.core.errors import InvalidInput, PermissionDenied
from pukara.core.schema import utcnow
from tui.client import queries
from tui.client.base import EXPORT_FORMATS, AlertQuery, CaseQuery, ExerciseControl, Page


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
                 clock: Clock = utcnow, exercise_control: ExerciseControl | None = None
                 ) -> None:
        self.services = services
        self.exercise_control = exercise_control
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
            catch_up(self.services.store)

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
        return self.services.playbooks.catalogue(case_ref)

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

    # -- exercises (state through playbooks.exercises; playing through the control) ------
    def exercises(self) -> dict[str, Any]:
        """The shipped scenarios and every run in the store."""
        from playbooks.exercises import runs
        from playbooks.exercises.loader import load_scenario, shipped_scenarios

        scenarios = []
        for scenario_id, path in shipped_scenarios().items():
            scenario = load_scenario(path)
            scenarios.append({"id": scenario_id, "title": scenario.title,
                              "injects": len(scenario.timeline)})
        return {"scenarios": scenarios, "runs": runs.list_runs(self.services.store)}

    def exercise_start(self, scenario: str, speed: float, bots: list[str]) -> dict[str, Any]:
        """Create a run of a shipped scenario and have the exercise control play it."""
        from playbooks.exercises import runs
        from playbooks.exercises.loader import load_scenario, shipped_scenarios

        control = self._control()
        shipped = shipped_scenarios()
        if scenario not in shipped:
            raise InvalidInput(f"no shipped scenario {scenario!r}; shipped: "
                               f"{', '.join(shipped)}", field="scenario")
        loaded = load_scenario(shipped[scenario])
        participants = loaded.participant_ids(self.services.identity.entities())
        bot_ids = participants if "all" in bots else [e for e in participants if e in bots]
        exercise_id = runs.create(self.services.store, loaded, participants, bot_ids,
                                  speed=speed, actor=self.actor)
        control.launch(exercise_id, bot_ids, self.actor)
        return self.exercise_status(exercise_id)

    def _control(self) -> ExerciseControl:
        if self.exercise_control is None:
            raise InvalidInput("this terminal cannot play exercises (no exercise runtime); "
                               "use `pukara exercise run`", field="scenario")
        return self.exercise_control

    def _exercise_transition(self, exercise_id: str, action: str) -> dict[str, Any]:
        from playbooks.exercises import runs

        if self.exercise_control is not None:
            self.exercise_control.transition(exercise_id, action, self.actor)
        else:
            runs.transition(self.services.store, exercise_id, action, self.actor)
        return self.exercise_status(exercise_id)

    def exercise_pause(self, exercise_id: str) -> dict[str, Any]:
        """RUNNING → PAUSED."""
        return self._exercise_transition(exercise_id, "pause")

    def exercise_resume(self, exercise_id: str) -> dict[str, Any]:
        """PAUSED → RUNNING."""
        return self._exercise_transition(exercise_id, "resume")

    def exercise_abort(self, exercise_id: str) -> dict[str, Any]:
        """The kill switch."""
        return self._exercise_transition(exercise_id, "abort")

    def exercise_status(self, exercise_id: str) -> dict[str, Any]:
        """The run's clock and inject log with the live scoreboard."""
        from playbooks.exercises import runs
        from playbooks.exercises.scoring import scoreboard

        state = runs.status(self.services.store, exercise_id)
        board = scoreboard(self.services.store, exercise_id)
        state.update(scores=board["scores"], sectors=board["sectors"],
                     outcomes=board["outcomes"])
        return state

    def exercise_score(self, exercise_id: str, entity: str, expectation: str | None,
                       points: int, comment: str) -> dict[str, Any]:
        """Manual points through the scoring module (the expectation, if named, leads the
        comment: the engine keeps manual scores per entity)."""
        from playbooks.exercises.scoring import add_manual_score

        text = f"[{expectation}] {comment}" if expectation and comment.strip() else comment
        add_manual_score(self.services.store, exercise_id, entity, points=points,
                         comment=text, actor=self.actor)
        return self.exercise_status(exercise_id)

    def exercise_report(self, exercise_id: str) -> str:
        """The after-action report (Markdown)."""
        from playbooks.exercises.report import markdown

        return markdown(self.services.store, exercise_id)

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
        """Stop the exercise control (if any), close the store."""
        if self.exercise_control is not None:
            self.exercise_control.close()
        self.services.close()


def _observable_query(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'observable:"{escaped}"'


__all__ = ["LocalClient", "local_actor"]
