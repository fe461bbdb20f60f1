"""Runs in the store: create one (definition frozen, every step pending), load one, and the
JSON views of runs and steps that the CLI, the API and the TUI show."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, insert, select

from cases.services import audit, timeline
from cases.services.case_models import find_case, iso
from cases.store import Store
from playbooks.model import Playbook, Step
from playbooks.tables import playbook_runs, playbook_steps
from pukara.core.errors import NotFound

Loaded = tuple[RowMapping, Playbook, dict[str, RowMapping]]


def insert_run(conn: Connection, playbook: Playbook, case_id: str, actor: audit.Actor, *,
               now: datetime, inputs: dict[str, Any]) -> str:
    """Store a new run of ``playbook`` on a case, with timeline and audit entries."""
    run_id = str(uuid.uuid4())
    conn.execute(insert(playbook_runs).values(
        id=run_id, case_id=case_id, playbook_id=playbook.id, playbook_version=playbook.version,
        definition=playbook.model_dump(mode="json", by_alias=True), inputs=inputs,
        state="running",
        started_by=actor.name, started_at=now, updated_at=now, finished_at=None))
    conn.execute(insert(playbook_steps), [
        {"run_id": run_id, "step_id": step.id, "position": index, "kind": step.kind,
         "state": "pending", "attempts": 0, "next_attempt_at": None, "task_id": None,
         "error": None, "output": {}, "decided_by": None, "created_at": now,
         "started_at": None, "finished_at": None, "updated_at": now}
        for index, step in enumerate(playbook.steps)])
    timeline.record(conn, case_id, "playbook.start", actor,
                    f"playbook {playbook.id} v{playbook.version} started: {playbook.title}",
                    details={"run_id": run_id})
    audit.append(conn, actor, "playbook.start", "case", case_id,
                 details={"run_id": run_id, "playbook": playbook.id,
                          "version": playbook.version})
    return run_id


def load_run(store: Store, run_id: str) -> Loaded:
    """The run row, its frozen playbook, and each step's row by id."""
    with store.read() as conn:
        run = conn.execute(select(playbook_runs).where(playbook_runs.c.id == run_id)
                           ).mappings().first()
        if run is None:
            raise NotFound(f"no playbook run {run_id}")
        rows = conn.execute(select(playbook_steps).where(
            playbook_steps.c.run_id == run_id)).mappings().all()
    return run, Playbook.model_validate(run["definition"]), {r["step_id"]: r for r in rows}


def run_ids_of_case(store: Store, case_ref: str) -> list[str]:
    """The runs on a case, oldest first."""
    with store.read() as conn:
        case_id = find_case(conn, case_ref)["id"]
        return list(conn.execute(select(playbook_runs.c.id).where(
            playbook_runs.c.case_id == case_id).order_by(playbook_runs.c.started_at)).scalars())


def run_view(loaded: Loaded) -> dict[str, Any]:
    """One run as JSON."""
    run, playbook, states = loaded
    return {"run_id": run["id"], "case_id": run["case_id"], "playbook": run["playbook_id"],
            "version": run["playbook_version"], "title": playbook.title, "state": run["state"],
            "inputs": run["inputs"], "started_by": run["started_by"],
            "started_at": iso(run["started_at"]),
            "finished_at": iso(run["finished_at"]),
            "steps": [step_view(step, states[step.id]) for step in playbook.steps]}


def step_view(step: Step, row: RowMapping) -> dict[str, Any]:
    """One step with its state, owner (role) and times."""
    owner = step.task.owner if step.task else step.approval.role if step.approval else "system"
    return {"id": step.id, "name": step.name, "phase": step.phase, "kind": step.kind,
            "owner": owner, "state": row["state"], "attempts": row["attempts"],
            "next_attempt_at": iso(row["next_attempt_at"]), "error": row["error"],
            "task_id": row["task_id"], "decided_by": row["decided_by"],
            "output": row["output"], "started_at": iso(row["started_at"]),
            "finished_at": iso(row["finished_at"]), "needs": list(step.needs)}
