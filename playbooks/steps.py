"""One step at a time: what each kind does when it becomes ready, and how states change.

Every change of a step's state happens in one write transaction that first re-reads the step
and only acts if it is still in the state the caller saw; so two engines ticking the same
store, or a tick repeated after a crash, never run a step twice (actions that run inside the
transaction commit together with their step's ``done``). Each change writes a timeline entry
on the case.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, select, update

from cases.services import audit, timeline
from cases.services.tasks import add_task
from cases.store import Store
from cases.store.tables_cases import case_tasks
from playbooks.actions import (
    ActionContext,
    ActionFailed,
    ActionResult,
    ActionTools,
    get_action,
    is_transactional,
)
from playbooks.facts import case_facts
from playbooks.model import Playbook, Step, parse_offset, substitute
from playbooks.notify.outbox import Outbox
from playbooks.tables import playbook_runs, playbook_steps
from pukara.core.errors import ExternalServiceError, PukaraError

TERMINAL = ("done", "skipped")
RETRYABLE = (ActionFailed, ExternalServiceError)


def step_row(conn: Connection, run_id: str, step_id: str) -> RowMapping:
    """The stored state of one step."""
    return (
        conn.execute(
            select(playbook_steps).where(
                playbook_steps.c.run_id == run_id, playbook_steps.c.step_id == step_id
            )
        )
        .mappings()
        .one()
    )


def set_state(
    conn: Connection,
    run: RowMapping,
    step: Step,
    state: str,
    *,
    now: datetime,
    actor: audit.Actor,
    note: str = "",
    **values: Any,
) -> None:
    """Move a step to ``state`` and write the timeline entry."""
    changes: dict[str, Any] = {"state": state, "updated_at": now, **values}
    if state in ("running", "waiting"):
        changes.setdefault("started_at", now)
    if state in (*TERMINAL, "failed"):
        changes["finished_at"] = now
    conn.execute(
        update(playbook_steps)
        .where(playbook_steps.c.run_id == run["id"], playbook_steps.c.step_id == step.id)
        .values(**changes)
    )
    conn.execute(
        update(playbook_runs).where(playbook_runs.c.id == run["id"]).values(updated_at=now)
    )
    text = f"playbook {run['playbook_id']}: {step.name} — {state}" + (f": {note}" if note else "")
    timeline.record(
        conn,
        run["case_id"],
        "playbook.step",
        actor,
        text[:4000],
        details={"run_id": run["id"], "step_id": step.id, "state": state},
    )


class StepRunner:
    """Starts and finishes steps of one kind or another."""

    def __init__(self, store: Store, outbox: Outbox, tools: ActionTools) -> None:
        self.store = store
        self.outbox = outbox
        self.tools = tools

    def begin(
        self, run: RowMapping, playbook: Playbook, step: Step, now: datetime, actor: audit.Actor
    ) -> None:
        """Start a ready (pending) step according to its kind."""
        if step.action is not None:
            self.run_action(run, step, now, actor)
            return
        with self.store.write() as conn:
            if step_row(conn, run["id"], step.id)["state"] != "pending":
                return
            if step.task is not None:
                self._open_task(conn, run, step, now, actor)
            elif step.approval is not None:
                self._ask_approval(conn, run, playbook, step, now=now, actor=actor)
            else:
                self._decide(conn, run, playbook, step, now=now, actor=actor)

    def _open_task(
        self, conn: Connection, run: RowMapping, step: Step, now: datetime, actor: audit.Actor
    ) -> None:
        spec = step.task
        assert spec is not None
        due = now + parse_offset(spec.due) if spec.due else None
        task = add_task(
            conn,
            run["case_id"],
            spec.title,
            actor,
            owner=spec.owner,
            due_at=due,
            notes=spec.instructions,
        )
        set_state(
            conn,
            run,
            step,
            "waiting",
            now=now,
            actor=actor,
            note=f"task for {spec.owner}",
            task_id=task["id"],
        )

    def _ask_approval(
        self,
        conn: Connection,
        run: RowMapping,
        playbook: Playbook,
        step: Step,
        *,
        now: datetime,
        actor: audit.Actor,
    ) -> None:
        spec = step.approval
        assert spec is not None
        facts = case_facts(conn, run["case_id"])
        self.outbox.enqueue(
            conn,
            "approval-needed",
            key=f"run:{run['id']}:step:{step.id}",
            entity_id=None,
            case_id=run["case_id"],
            actor=actor,
            values={
                "center": self.tools.center_name,
                "case_number": facts["number"],
                "case_title": facts["title"],
                "severity": facts["severity"],
                "step_name": step.name,
                "step_id": step.id,
                "run_id": run["id"],
                "role": spec.role,
                "prompt": spec.prompt,
                "playbook_title": playbook.title,
            },
        )
        set_state(
            conn, run, step, "waiting", now=now, actor=actor, note=f"approval by a {spec.role}"
        )

    def _decide(
        self,
        conn: Connection,
        run: RowMapping,
        playbook: Playbook,
        step: Step,
        *,
        now: datetime,
        actor: audit.Actor,
    ) -> None:
        spec = step.decision
        assert spec is not None
        outcome = spec.parsed().evaluate(case_facts(conn, run["case_id"]))
        chosen, other = (spec.then, spec.else_) if outcome else (spec.else_, spec.then)
        set_state(
            conn,
            run,
            step,
            "done",
            now=now,
            actor=actor,
            note=f"{spec.condition} → {'then' if outcome else 'else'}",
            output={"result": outcome, "branch": chosen},
        )
        for loser in other:
            if loser not in chosen and step_row(conn, run["id"], loser)["state"] == "pending":
                set_state(
                    conn,
                    run,
                    playbook.step(loser),
                    "skipped",
                    now=now,
                    actor=actor,
                    note=f"branch not taken at {step.id}",
                )

    def check_task(self, run: RowMapping, step: Step, now: datetime) -> None:
        """A waiting manual step follows its case task: done → done, cancelled → skipped."""
        with self.store.write() as conn:
            row = step_row(conn, run["id"], step.id)
            if row["state"] != "waiting" or not row["task_id"]:
                return
            status = conn.execute(
                select(case_tasks.c.status).where(case_tasks.c.id == row["task_id"])
            ).scalar_one_or_none()
            if status == "done":
                set_state(conn, run, step, "done", now=now, actor=audit.SYSTEM, note="task done")
            elif status == "cancelled":
                set_state(
                    conn, run, step, "skipped", now=now, actor=audit.SYSTEM, note="task cancelled"
                )

    # -- actions ---------------------------------------------------------------------

    def run_action(self, run: RowMapping, step: Step, now: datetime, actor: audit.Actor) -> None:
        """Run an action step: inside one transaction, or around one for outside actions."""
        call = step.action
        assert call is not None
        if is_transactional(call.name):
            with self.store.write() as conn:
                row = step_row(conn, run["id"], step.id)
                if row["state"] != "pending":
                    return
                attempt = int(row["attempts"]) + 1
                try:
                    with conn.begin_nested():
                        result = self._call(conn, run, step, attempt, actor)
                except Exception as exc:
                    self._failed(conn, run, step, attempt, exc=exc, now=now, actor=actor)
                    return
                self._done(conn, run, step, attempt, result=result, now=now, actor=actor)
            return
        self._run_outside(run, step, now, actor)

    def _run_outside(self, run: RowMapping, step: Step, now: datetime, actor: audit.Actor) -> None:
        with self.store.write() as conn:
            row = step_row(conn, run["id"], step.id)
            if row["state"] not in ("pending", "running"):
                return
            attempt = int(row["attempts"]) + 1
            set_state(
                conn,
                run,
                step,
                "running",
                now=now,
                actor=actor,
                note=f"attempt {attempt}",
                attempts=attempt,
            )
        try:
            result: ActionResult | Exception = self._call(None, run, step, attempt, actor)
        except Exception as exc:
            result = exc
        with self.store.write() as conn:
            if step_row(conn, run["id"], step.id)["state"] != "running":
                return
            if isinstance(result, Exception):
                self._failed(conn, run, step, attempt, exc=result, now=now, actor=actor)
            else:
                self._done(conn, run, step, attempt, result=result, now=now, actor=actor)

    def _call(
        self, conn: Connection | None, run: RowMapping, step: Step, attempt: int, actor: audit.Actor
    ) -> ActionResult:
        call = step.action
        assert call is not None
        if conn is None:
            with self.store.read() as reader:
                facts = case_facts(reader, run["case_id"])
        else:
            facts = case_facts(conn, run["case_id"])
        context = ActionContext(
            conn=conn,
            store=self.store,
            case=facts,
            run_id=run["id"],
            step_id=step.id,
            actor=actor,
            tools=self.tools,
            outbox=self.outbox,
            attempt=attempt,
        )
        return get_action(call.name)(context, **substitute(call.with_, run["inputs"]))

    @staticmethod
    def _done(
        conn: Connection,
        run: RowMapping,
        step: Step,
        attempt: int,
        *,
        result: ActionResult,
        now: datetime,
        actor: audit.Actor,
    ) -> None:
        set_state(
            conn,
            run,
            step,
            "done",
            now=now,
            actor=actor,
            note=result.summary,
            attempts=attempt,
            output={"summary": result.summary, **result.output},
            error=None,
            next_attempt_at=None,
        )

    @staticmethod
    def _failed(conn: Connection, run: RowMapping, step: Step, attempt: int, *,
                exc: Exception, now: datetime, actor: audit.Actor) -> None:
        call = step.action
        assert call is not None
        error = f"{type(exc).__name__}: {exc}"[:2000]
        retryable = isinstance(exc, RETRYABLE) or not isinstance(exc, PukaraError | TypeError)
        if retryable and attempt < call.retry.attempts:
            wait = call.retry.delay(attempt)
            set_state(conn, run, step, "pending", now=now, actor=actor,
                      note=f"attempt {attempt} failed ({error}); next in {wait}",
                      attempts=attempt, error=error, next_attempt_at=now + wait)
            return
        set_state(conn, run, step, "failed", now=now, actor=actor, note=error,
                  attempts=attempt, error=error, next_attempt_at=None)
