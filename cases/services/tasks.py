"""Tasks of a case: title, owner, due time, status (todo | in-progress | done | cancelled),
notes. Every change writes a timeline entry and an audit entry in the same transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, insert, select, update

from cases.services import audit, timeline
from cases.services.case_models import find_case, iso
from cases.store import Store
from cases.store.tables_cases import case_tasks
from pukara.core.errors import InvalidInput, NotFound
from pukara.core.schema import utcnow

TASK_STATUSES = ("todo", "in-progress", "done", "cancelled")


def task_view(row: RowMapping) -> dict[str, Any]:
    """The JSON form of a task row."""
    return {"id": row["id"], "case_id": row["case_id"], "title": row["title"],
            "owner": row["owner"], "due_at": iso(row["due_at"]), "status": row["status"],
            "notes": row["notes"], "created_at": iso(row["created_at"]),
            "updated_at": iso(row["updated_at"])}


def add_task(conn: Connection, case_id: str, title: str, actor: audit.Actor, *,
             owner: str | None = None, due_at: datetime | None = None,
             notes: str = "") -> dict[str, Any]:
    """Add a task to a case inside the caller's transaction."""
    title = title.strip()
    if not title or len(title) > 300:
        raise InvalidInput("a task title is 1 to 300 characters", field="title")
    if due_at is not None and due_at.tzinfo is None:
        raise InvalidInput("the due time needs a time zone (e.g. Z)", field="due")
    now = utcnow()
    row = {"id": str(uuid.uuid4()), "case_id": case_id, "title": title, "owner": owner,
           "due_at": due_at, "status": "todo", "notes": notes, "created_at": now,
           "updated_at": now}
    conn.execute(insert(case_tasks).values(**row))
    timeline.record(conn, case_id, "task.add", actor, f"task added: {title}",
                    details={"task_id": row["id"], "owner": owner, "due_at": iso(due_at)})
    view = task_view(row)  # type: ignore[arg-type]
    audit.append(conn, actor, "case.task_add", "case", case_id, after=view)
    return view


def tasks_of(conn: Connection, case_id: str) -> list[dict[str, Any]]:
    """The tasks of a case in the order they were added."""
    query = (select(case_tasks).where(case_tasks.c.case_id == case_id)
             .order_by(case_tasks.c.created_at, case_tasks.c.id))
    return [task_view(r) for r in conn.execute(query).mappings()]


class TaskService:
    """Add, change and list the tasks of cases."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, case_ref: str, title: str, actor: audit.Actor, *, owner: str | None = None,
            due_at: datetime | None = None, notes: str = "") -> dict[str, Any]:
        """Add a task to the case named by id or number."""
        with self.store.write() as conn:
            case = find_case(conn, case_ref)
            return add_task(conn, case["id"], title, actor, owner=owner, due_at=due_at,
                            notes=notes)

    def set_status(self, task_id: str, status: str, actor: audit.Actor, *,
                   note: str | None = None) -> dict[str, Any]:
        """Move a task to ``status``; a note is appended to the task's notes."""
        if status not in TASK_STATUSES:
            raise InvalidInput(f"task status must be one of {', '.join(TASK_STATUSES)}",
                               field="status")
        with self.store.write() as conn:
            row = self._task(conn, task_id)
            notes = row["notes"]
            if note and note.strip():
                notes = f"{notes}\n{note.strip()}".strip()
            values = {"status": status, "notes": notes, "updated_at": utcnow()}
            conn.execute(update(case_tasks).where(case_tasks.c.id == row["id"]).values(**values))
            after = {**task_view(row), **values, "updated_at": iso(values["updated_at"])}
            timeline.record(conn, row["case_id"], "task.status", actor,
                            f"task {row['title']}: {row['status']} → {status}",
                            details={"task_id": row["id"], "from": row["status"], "to": status})
            audit.append(conn, actor, "case.task_status", "case", row["case_id"],
                         before=task_view(row), after=after)
            return after

    def reassign(self, task_id: str, owner: str, actor: audit.Actor) -> dict[str, Any]:
        """Give a task to ``owner``, with a timeline entry and an audit entry."""
        owner = owner.strip()
        if not owner or len(owner) > 100:
            raise InvalidInput("the owner is 1..100 characters", field="owner")
        with self.store.write() as conn:
            row = self._task(conn, task_id)
            now = utcnow()
            conn.execute(update(case_tasks).where(case_tasks.c.id == row["id"])
                         .values(owner=owner, updated_at=now))
            after = {**task_view(row), "owner": owner, "updated_at": iso(now)}
            timeline.record(conn, row["case_id"], "task.owner", actor,
                            f"task {row['title']}: owner {row['owner'] or '-'} → {owner}",
                            details={"task_id": row["id"], "from": row["owner"], "to": owner})
            audit.append(conn, actor, "case.task_owner", "case", row["case_id"],
                         before=task_view(row), after=after)
            return after

    def list(self, case_ref: str) -> list[dict[str, Any]]:
        """The tasks of a case."""
        with self.store.read() as conn:
            return tasks_of(conn, find_case(conn, case_ref)["id"])

    @staticmethod
    def _task(conn: Connection, task_id: str) -> RowMapping:
        """The task with this id, or the only one whose id starts with it (≥ 6 chars)."""
        ref = str(task_id).strip().lower()
        query = select(case_tasks).where(case_tasks.c.id == ref)
        rows = list(conn.execute(query).mappings())
        if not rows and len(ref) >= 6 and all(c in "0123456789abcdef-" for c in ref):
            prefix = select(case_tasks).where(case_tasks.c.id.like(f"{ref}%")).limit(2)
            rows = list(conn.execute(prefix).mappings())
        if len(rows) != 1:
            raise NotFound(f"no such task: {task_id}" if not rows else
                           f"task id {task_id!r} is ambiguous; give more characters")
        return rows[0]
