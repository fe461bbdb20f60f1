"""``message``: a narrative message to each targeted participant.

Recorded in the exercise's own ``exercise_messages`` table (marked with the exercise id, purged
with it); the subject carries the mandatory "[EXERCISE]" marking (OpenAEV's simulation header).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert

from playbooks.exercises.injects import InjectContext, fill, inject_kind
from playbooks.exercises.tables import exercise_messages

MARK = "[EXERCISE]"


@inject_kind("message")
def message(ctx: InjectContext) -> dict[str, Any]:
    """Record ``args.subject`` / ``args.body`` for each target (placeholders filled by
    :func:`fill`)."""
    subject = str(ctx.inject.args.get("subject") or ctx.inject.title or "Exercise message")
    body = str(ctx.inject.args.get("body") or "")
    rows = []
    for entity in ctx.targets:
        ctx.check()
        rows.append({"exercise_id": ctx.exercise_id, "inject_id": ctx.inject.id,
                     "entity_id": entity.id, "subject": f"{MARK} {fill(subject, entity)}",
                     "body": fill(body, entity), "created_at": ctx.now})
    if rows:
        with ctx.store.write() as conn:
            conn.execute(insert(exercise_messages), rows)
    return {"messages": len(rows)}
