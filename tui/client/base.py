"""The one interface every screen calls for data: :class:`CaseClient`.

Screens never touch the store or HTTP; they hold a ``CaseClient`` and call it from thread
workers. Results are plain dicts/dataclasses (JSON-ready, the same shape on both
implementations); failures are :mod:`pukara.core.errors` exceptions (``NotFound``,
``InvalidInput``, ``Conflict``, ``PermissionDenied``, ``StoreError``…), which the app shows
with ``notify(severity="error")``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cases.services.audit import Actor

EXPORT_FORMATS = ("misp", "stix", "markdown")


@dataclass(frozen=True)
class AlertQuery:
    """One page request of the alert queue: search syntax text, order, window."""

    text: str = ""
    sort: str = "-observed_at"
    offset: int = 0
    limit: int = 100


@dataclass(frozen=True)
class CaseQuery:
    """One page request of the case list."""

    text: str = ""
    status: str | None = None
    include_closed: bool = False
    sort: str = "-created_at"
    offset: int = 0
    limit: int = 100


@dataclass
class Page:
    """Rows of one page and the total matching (``total_capped``: at least ``total``)."""

    rows: list[dict[str, Any]]
    total: int
    offset: int = 0
    total_capped: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def total_label(self) -> str:
        """``"1,234"`` or ``"10,000+"``."""
        return f"{self.total:,}{'+' if self.total_capped else ''}"


class ExerciseControl(Protocol):
    """What the composition root hands :class:`~tui.client.local.LocalClient` to *play*
    exercises: the scheduler (with ``deliver`` through the real pipeline) and, for bots,
    the real entity API on loopback. Without one the local client only changes stored
    state, which the scheduler leader of another process follows."""

    def launch(self, exercise_id: str, bots: list[str], actor: Actor) -> None:
        """Start the engine (if not yet), the bots of ``bots`` and the created run."""
        ...

    def transition(self, exercise_id: str, action: str, actor: Actor) -> str:
        """pause|resume|abort through the engine at once; the new status value."""
        ...

    def close(self) -> None:
        """Stop bots, API server and engine (runs stay as stored)."""
        ...


class CaseClient(Protocol):
    """What the TUI needs from the case system (local store or analyst API)."""

    # -- dashboard -------------------------------------------------------------------
    def dashboard(self, now: datetime) -> dict[str, Any]:
        """Aggregates: ``alerts_per_minute``, ``open_cases`` (by_severity/sector/entity),
        ``deadlines`` (``due_soon``/``overdue`` lists), ``active_campaigns``,
        ``top_indicators``, ``compliance_by_sector``, ``alerts_total``."""
        ...

    # -- alerts ----------------------------------------------------------------------
    def alert_page(self, query: AlertQuery) -> Page:
        """A page of alerts matching the search syntax, with the total."""
        ...

    def alert_groups(self, text: str, limit: int = 500) -> list[dict[str, Any]]:
        """Groups of similar alerts (the triage service's) for field filters only
        (``status entity severity source class case exercise id``); each with its
        ``alert_ids``. Default: the open queue."""
        ...

    def alert(self, alert_id: int) -> dict[str, Any]:
        """One alert: summary fields, ``alert`` (the document) and ``raw``."""
        ...

    def acknowledge(self, ids: list[int]) -> list[int]:
        """new → acknowledged; the ids changed."""
        ...

    def dismiss(self, ids: list[int], reason: str) -> list[int]:
        """→ dismissed with one of :func:`dismiss_reasons`."""
        ...

    def dismiss_reasons(self) -> tuple[str, ...]:
        """The reasons a dismissal may give."""
        ...

    def promote(self, ids: list[int], title: str | None = None) -> dict[str, Any]:
        """Open a new case with these alerts: ``{"case_id", "number", "alert_ids"}``."""
        ...

    def add_to_case(self, ids: list[int], case_ref: str) -> dict[str, Any]:
        """Merge these alerts into an open case: ``{"case_id", "number", "alert_ids"}``."""
        ...

    # -- cases -----------------------------------------------------------------------
    def case_page(self, query: CaseQuery) -> Page:
        """A page of cases (each with ``entity_ids``, ``alerts`` count)."""
        ...

    def case(self, case_ref: str) -> dict[str, Any]:
        """A case with tasks, alerts, incidents, observables, timeline, comments, evidence."""
        ...

    def update_case(self, case_ref: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change fields of an open case; the new full view."""
        ...

    def set_task_status(self, task_id: str, status: str) -> dict[str, Any]:
        """Move a task to ``status`` (``done`` marks it done)."""
        ...

    def reassign_task(self, task_id: str, owner: str) -> dict[str, Any]:
        """Give a task to ``owner``."""
        ...

    def add_note(self, case_ref: str, text: str) -> dict[str, Any]:
        """A timeline entry written by the analyst."""
        ...

    def add_comment(self, case_ref: str, text: str) -> dict[str, Any]:
        """A comment on the case."""
        ...

    def export_case(self, case_ref: str, fmt: str) -> str:
        """The case as a MISP event (JSON), a STIX 2.1 bundle or a Markdown report."""
        ...

    # -- playbooks -------------------------------------------------------------------
    def playbooks(self, case_ref: str | None = None) -> list[dict[str, Any]]:
        """The playbook library: ``id``, ``title``, ``version``, ``auto_start``, ``inputs``
        (names without a default) and, given a case, ``matches`` (its ``when`` fits the
        case); matching playbooks first."""
        ...

    def playbook_status(self, case_ref: str) -> list[dict[str, Any]]:
        """Every run on a case, each with ``steps`` (id, name, phase, kind, owner, state,
        attempts, next_attempt_at, error, task_id, decided_by)."""
        ...

    def playbook_start(self, playbook_id: str, case_ref: str) -> dict[str, Any]:
        """Start a playbook by hand on a case; the new run."""
        ...

    def playbook_step_done(self, run_id: str, step_id: str) -> dict[str, Any]:
        """Mark a waiting manual step's task done; the run afterwards."""
        ...

    def playbook_approve(self, run_id: str, step_id: str, comment: str = "") -> dict[str, Any]:
        """Approve a waiting approval step (coordinator or admin, else
        ``PermissionDenied``); the run afterwards."""
        ...

    def playbook_retry(self, run_id: str, step_id: str) -> dict[str, Any]:
        """Send a failed step back for a fresh set of attempts; the run afterwards."""
        ...

    # -- exercises (coordinators) ---------------------------------------------------
    def exercises(self) -> dict[str, Any]:
        """``{"scenarios": [{"id", "title", "injects"}], "runs": [{"id", "scenario",
        "title", "status", "speed", "created_at"}]}`` (runs newest first)."""
        ...

    def exercise_start(self, scenario: str, speed: float, bots: list[str]) -> dict[str, Any]:
        """Create and start a run of a shipped scenario (``bots``: ``[]``, ``["all"]`` or
        entity ids); the run's :meth:`exercise_status`."""
        ...

    def exercise_pause(self, exercise_id: str) -> dict[str, Any]:
        """RUNNING → PAUSED (the exercise clock stops); the status."""
        ...

    def exercise_resume(self, exercise_id: str) -> dict[str, Any]:
        """PAUSED → RUNNING; the status."""
        ...

    def exercise_abort(self, exercise_id: str) -> dict[str, Any]:
        """The kill switch: → CANCELED, every inject stopped; the status."""
        ...

    def exercise_status(self, exercise_id: str) -> dict[str, Any]:
        """The clock (``status``, ``speed``, ``exercise_seconds``, ``ends_at_seconds``),
        ``injects`` (the inject log), ``scores`` per entity (points, max_points, met, missed,
        pending, mean_minutes_to_report, manual), ``sectors`` and ``outcomes``."""
        ...

    def exercise_score(self, exercise_id: str, entity: str, expectation: str | None,
                       points: int, comment: str) -> dict[str, Any]:
        """Add a coordinator's manual points (comment required; audited); the status."""
        ...

    def exercise_report(self, exercise_id: str) -> str:
        """The after-action report as Markdown."""
        ...

    # -- entities, intel, search -----------------------------------------------------
    def entities(self) -> list[dict[str, Any]]:
        """The constituency: id, name, sector, criticality, open_cases, open_incidents."""
        ...

    def entity(self, entity_id: str) -> dict[str, Any]:
        """One entity with contacts, open incidents and its reporting compliance."""
        ...

    def intel_lookup(self, value: str) -> dict[str, Any]:
        """``{"value", "hits": [...], "seen": {"alerts": [...], "cases": [...]}}``."""
        ...

    def intel_stats(self) -> dict[str, Any]:
        """Indicator counts by type and source, warninglists, sources."""
        ...

    def search(self, text: str, limit: int = 50) -> dict[str, list[dict[str, Any]]]:
        """``{"alerts": [...], "cases": [...]}`` for the search syntax."""
        ...

    def close(self) -> None:
        """Release what the client holds (store, HTTP connections)."""
        ...
