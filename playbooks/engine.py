"""The playbook engine: runs playbooks on cases as graphs, all state in the database.

A run freezes the playbook definition it started with. ``tick(now)`` advances every running
run: a pending step whose ``needs`` are all done or skipped starts (a step whose needs were
all skipped is skipped too; a join with at least one done need runs); a waiting manual step
follows its case task; an action that failed waits for its persisted next-attempt time, and
after its last attempt stays ``failed`` until someone calls :meth:`retry`. Approvals wait for
:meth:`approve` by a coordinator or admin (audited). Because nothing lives in memory, a new
engine on the same store (after a restart) continues exactly where the old one stopped, and
ticking twice does nothing twice. Runs start by hand (:meth:`start`) or when a newly opened
case matches a playbook's ``when`` (:meth:`on_case_opened`, called by the case layer's
composition root), which also queues "case opened on your report" to the reporting entities.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import RowMapping, select, update

from cases.services import audit, timeline
from cases.services.case_models import find_case
from cases.services.identity import Principal, Role
from cases.services.tasks import TaskService
from cases.store import Store
from cases.store.tables import incidents
from playbooks.actions import ActionTools
from playbooks.actions.enrich import intel_lookup, yara_lookup
from playbooks.facts import case_facts
from playbooks.loader import library
from playbooks.model import Playbook, Step
from playbooks.notify.outbox import Outbox
from playbooks.runs import Loaded, insert_run, load_run, run_ids_of_case, run_view
from playbooks.steps import TERMINAL, StepRunner, set_state, step_row
from playbooks.tables import ensure_tables, playbook_runs, playbook_steps
from pukara.core.config import Settings
from pukara.core.errors import Conflict, NotFound, PermissionDenied
from pukara.core.schema import utcnow
from pukara.core.taxonomy import Severity

#: an outside action left ``running`` longer than this is taken to have died with its worker
STALE_RUNNING = timedelta(minutes=10)
APPROVERS = {"coordinator": {Role.COORDINATOR, Role.ADMIN}, "admin": {Role.ADMIN}}


class PlaybookEngine:
    """Start, advance, approve and retry playbook runs on cases."""

    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        tools: ActionTools | None = None,
        *,
        playbooks: dict[str, Playbook] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        ensure_tables(store.engine)
        self.store = store
        self.outbox = outbox
        self.tools = tools or ActionTools()
        if self.tools.intel is None:
            self.tools.intel = intel_lookup(store.engine)
        self.playbooks = library() if playbooks is None else playbooks
        self.clock = clock
        self.steps = StepRunner(store, outbox, self.tools)

    # -- starting --------------------------------------------------------------------

    def start(self, playbook_id: str, case_ref: str, actor: audit.Actor, *,
              inputs: dict[str, Any] | None = None, now: datetime | None = None) -> str:
        """Start ``playbook_id`` on a case (with its typed inputs) and advance it; returns
        the run id."""
        playbook = self.playbooks.get(playbook_id)
        if playbook is None:
            known = ", ".join(sorted(self.playbooks))
            raise NotFound(f"no playbook {playbook_id!r}; known: {known}")
        resolved = playbook.resolve_inputs(dict(inputs or {}))
        now = now or self.clock()
        with self.store.write() as conn:
            case = find_case(conn, case_ref)
            if case["status"] == "closed":
                raise Conflict(f"case {case['number']} is closed", field="case")
            existing = conn.execute(
                select(playbook_runs.c.id).where(
                    playbook_runs.c.case_id == case["id"],
                    playbook_runs.c.playbook_id == playbook.id,
                )
            ).scalar_one_or_none()
            if existing is not None:
                raise Conflict(
                    f"playbook {playbook.id} already runs on case {case['number']} "
                    f"(run {existing})",
                    field="playbook",
                )
            run_id = insert_run(conn, playbook, case["id"], actor, now=now, inputs=resolved)
        self.advance(run_id, now=now)
        return run_id

    def catalogue(self, case_ref: str | None = None) -> list[dict[str, Any]]:
        """The library as rows; with a case, each says whether it matches (matching first)."""
        facts = None
        if case_ref is not None:
            with self.store.read() as conn:
                facts = case_facts(conn, case_ref)
        rows = []
        for playbook_id, book in sorted(self.playbooks.items()):
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

    def matching(self, case_ref: str) -> list[Playbook]:
        """The auto-start playbooks (every input defaulted) whose ``when`` matches the case."""
        with self.store.read() as conn:
            facts = case_facts(conn, case_ref)
        severity = Severity(facts["severity"])
        return [
            p
            for _, p in sorted(self.playbooks.items())
            if p.auto_start and all(i.default is not None for i in p.inputs)
            and p.when.matches(facts["classification"], severity, facts["sectors"])
        ]

    def on_case_opened(self, case_id: str, actor: audit.Actor = audit.SYSTEM) -> list[str]:
        """Tell reporting entities their case is open; start every matching playbook."""
        self.notify_case_opened(case_id, actor)
        started = []
        for playbook in self.matching(case_id):
            try:
                started.append(self.start(playbook.id, case_id, actor))
            except Conflict:
                continue
        return started

    def notify_case_opened(self, case_id: str, actor: audit.Actor = audit.SYSTEM) -> int:
        """Queue "case opened on your report" for each linked incident report (once each)."""
        with self.store.write() as conn:
            facts = case_facts(conn, case_id)
            rows = conn.execute(
                select(incidents.c.id, incidents.c.entity_id, incidents.c.tracking_number).where(
                    incidents.c.case_id == facts["id"]
                )
            ).all()
            return sum(
                self.outbox.enqueue(
                    conn,
                    "case-opened",
                    key=f"case-opened:{facts['id']}:{row.id}",
                    entity_id=row.entity_id,
                    case_id=facts["id"],
                    actor=actor,
                    values={
                        "center": self.tools.center_name,
                        "case_number": facts["number"],
                        "case_title": facts["title"],
                        "classification": facts["classification"],
                        "severity": facts["severity"],
                        "tlp": facts["tlp"],
                        "tracking_number": row.tracking_number,
                    },
                )
                for row in rows
            )

    # -- advancing -------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> int:
        """Advance every running run; returns how many runs are still running."""
        now = now or self.clock()
        with self.store.read() as conn:
            ids = list(
                conn.execute(
                    select(playbook_runs.c.id)
                    .where(playbook_runs.c.state == "running")
                    .order_by(playbook_runs.c.started_at)
                ).scalars()
            )
        return sum(self.advance(run_id, now=now) == "running" for run_id in ids)

    def advance(self, run_id: str, *, now: datetime | None = None) -> str:
        """Run every step that is ready, until nothing moves; returns the run's state."""
        now = now or self.clock()
        for _ in range(1000):
            run, playbook, states = self._load(run_id)
            if run["state"] != "running":
                return str(run["state"])
            if self._cancel_if_closed(run, now):
                return "cancelled"
            if not self._step_once(run, playbook, states, now):
                break
        return self._finish_if_done(run_id, now)

    def _cancel_if_closed(self, run: RowMapping, now: datetime) -> bool:
        """A run on a closed case stops (state ``cancelled``), recorded on the timeline."""
        with self.store.write() as conn:
            if find_case(conn, run["case_id"])["status"] != "closed":
                return False
            changed = conn.execute(update(playbook_runs).where(
                playbook_runs.c.id == run["id"], playbook_runs.c.state == "running").values(
                state="cancelled", finished_at=now, updated_at=now)).rowcount
            if changed:
                timeline.record(conn, run["case_id"], "playbook.cancel", audit.SYSTEM,
                                f"playbook {run['playbook_id']} cancelled: the case is closed",
                                details={"run_id": run["id"]})
            return True

    def _load(self, run_id: str) -> Loaded:
        return load_run(self.store, run_id)

    def _step_once(
        self, run: RowMapping, playbook: Playbook, states: dict[str, RowMapping], now: datetime
    ) -> bool:
        """Move the first step that can move; False when none can."""
        for step in playbook.steps:
            row = states[step.id]
            before = (row["state"], row["attempts"], row["updated_at"])
            self._move(run, playbook, step, states, now)
            with self.store.read() as conn:
                after = step_row(conn, run["id"], step.id)
            if (after["state"], after["attempts"], after["updated_at"]) != before:
                return True
        return False

    def _move(
        self,
        run: RowMapping,
        playbook: Playbook,
        step: Step,
        states: dict[str, RowMapping],
        now: datetime,
    ) -> None:
        row = states[step.id]
        state = row["state"]
        if state == "waiting" and step.task is not None:
            self.steps.check_task(run, step, now)
        elif state == "running" and row["updated_at"] <= now - STALE_RUNNING:
            self.steps.run_action(run, step, now, audit.SYSTEM)
        elif state == "pending":
            needs = [states[n]["state"] for n in step.needs]
            if any(s not in TERMINAL for s in needs):
                return
            if needs and all(s == "skipped" for s in needs):
                with self.store.write() as conn:
                    if step_row(conn, run["id"], step.id)["state"] == "pending":
                        set_state(
                            conn,
                            run,
                            step,
                            "skipped",
                            now=now,
                            actor=audit.SYSTEM,
                            note="everything it needs was skipped",
                        )
                return
            if row["next_attempt_at"] is not None and row["next_attempt_at"] > now:
                return
            self.steps.begin(run, playbook, step, now, audit.SYSTEM)

    def _finish_if_done(self, run_id: str, now: datetime) -> str:
        with self.store.write() as conn:
            run = (
                conn.execute(select(playbook_runs).where(playbook_runs.c.id == run_id))
                .mappings()
                .one()
            )
            states = set(
                conn.execute(
                    select(playbook_steps.c.state).where(playbook_steps.c.run_id == run_id)
                ).scalars()
            )
            if run["state"] == "running" and states <= set(TERMINAL):
                conn.execute(
                    update(playbook_runs)
                    .where(playbook_runs.c.id == run_id)
                    .values(state="done", finished_at=now, updated_at=now)
                )
                timeline.record(
                    conn,
                    run["case_id"],
                    "playbook.done",
                    audit.SYSTEM,
                    f"playbook {run['playbook_id']} finished",
                    details={"run_id": run_id},
                )
                return "done"
            return str(run["state"])

    # -- people ----------------------------------------------------------------------

    def approve(self, run_id: str, step_id: str, principal: Principal, *, note: str = "",
                now: datetime | None = None) -> str:
        """A coordinator (or admin) approves a waiting approval step; audited."""
        return self._decide(run_id, step_id, principal, approved=True, note=note, now=now)

    def reject(self, run_id: str, step_id: str, principal: Principal, *, note: str = "",
               now: datetime | None = None) -> str:
        """Refuse a waiting approval: the step fails (``retry`` asks again); audited."""
        return self._decide(run_id, step_id, principal, approved=False, note=note, now=now)

    def _decide(self, run_id: str, step_id: str, principal: Principal, *, approved: bool,
                note: str, now: datetime | None) -> str:
        now = now or self.clock()
        run, playbook, _ = self._load(run_id)
        step = self._step(playbook, step_id)
        if step.approval is None:
            raise Conflict(f"step {step_id} is not an approval", field="step")
        if principal.role not in APPROVERS[step.approval.role]:
            raise PermissionDenied(f"approving {step_id} needs the {step.approval.role} role")
        actor = principal.actor()
        verdict = "approved" if approved else "rejected"
        with self.store.write() as conn:
            if step_row(conn, run_id, step_id)["state"] != "waiting":
                raise Conflict(f"step {step_id} is not waiting for approval", field="step")
            set_state(conn, run, step, "done" if approved else "failed", now=now, actor=actor,
                      note=f"{verdict} by {actor.name}" + (f": {note}" if note else ""),
                      decided_by=actor.name, output={verdict + "_by": actor.name, "note": note},
                      error=None if approved else f"rejected by {actor.name}: {note}"[:2000])
            audit.append(conn, actor, f"playbook.{'approve' if approved else 'reject'}", "case",
                         run["case_id"], details={"run_id": run_id, "step_id": step_id})
        return self.advance(run_id, now=now)

    def retry(
        self, run_id: str, step_id: str, actor: audit.Actor, *, now: datetime | None = None
    ) -> str:
        """Send a failed step (an action out of attempts, a rejected approval) back to
        pending for a fresh set of attempts; audited."""
        now = now or self.clock()
        run, playbook, _ = self._load(run_id)
        step = self._step(playbook, step_id)
        with self.store.write() as conn:
            if step_row(conn, run_id, step_id)["state"] != "failed":
                raise Conflict(f"step {step_id} has not failed", field="step")
            set_state(
                conn,
                run,
                step,
                "pending",
                now=now,
                actor=actor,
                note=f"retry asked by {actor.name}",
                attempts=0,
                next_attempt_at=None,
                finished_at=None,
            )
            audit.append(
                conn,
                actor,
                "playbook.retry",
                "case",
                run["case_id"],
                details={"run_id": run_id, "step_id": step_id},
            )
        return self.advance(run_id, now=now)

    def complete_task(self, run_id: str, step_id: str, actor: audit.Actor, *,
                      note: str = "", now: datetime | None = None) -> str:
        """Mark the case task of a waiting manual step done (as the TUI's key does)."""
        _, playbook, states = self._load(run_id)
        row = states.get(self._step(playbook, step_id).id)
        if row is None or row["state"] != "waiting" or not row["task_id"]:
            raise Conflict(f"step {step_id} is not a manual step waiting for a person",
                           field="step")
        TaskService(self.store).set_status(row["task_id"], "done", actor, note=note or None)
        return self.advance(run_id, now=now)

    @staticmethod
    def _step(playbook: Playbook, step_id: str) -> Step:
        try:
            return playbook.step(step_id)
        except StopIteration:
            raise NotFound(f"no step {step_id!r} in playbook {playbook.id}") from None

    # -- reading ---------------------------------------------------------------------

    def status(self, case_ref: str) -> list[dict[str, Any]]:
        """Every run on a case with each step's state, owner and times."""
        return [self.run_view(run_id) for run_id in run_ids_of_case(self.store, case_ref)]

    def run_view(self, run_id: str) -> dict[str, Any]:
        """One run as JSON."""
        return run_view(load_run(self.store, run_id))


def build_playbooks(store: Store, outbox: Outbox, settings: Settings) -> PlaybookEngine:
    """The engine of one home: the shipped library, intel on the same store, YARA on demand."""
    tools = ActionTools(
        intel=intel_lookup(store.engine),
        yara=yara_lookup(list(settings.yara_rule_dirs), settings.cache_dir),
        evidence_root=settings.evidence_dir,
        center_name=settings.center_name,
    )
    return PlaybookEngine(store, outbox, tools)
