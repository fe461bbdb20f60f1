"""Actions that change the case itself: ``set-severity`` and ``add-tag``.

Each writes the change, a timeline entry and an audit entry (before/after hashes, SECURITY
J1) in the engine's transaction, the way the case service does.
"""

from __future__ import annotations

import re

from sqlalchemy import update

from cases.services import audit, case_links, timeline
from cases.store.tables_cases import cases
from playbooks.actions import ActionContext, ActionResult, action
from pukara.core.errors import InvalidInput
from pukara.core.schema import utcnow
from pukara.core.taxonomy import Severity

_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._=\"/+-]{0,99}$")


def _change(context: ActionContext, field: str, value: object, text: str) -> None:
    case_id = context.case["id"]
    before = case_links.snapshot(context.db, case_id)
    context.db.execute(update(cases).where(cases.c.id == case_id).values(
        {field: value, "updated_at": utcnow()}))
    timeline.record(context.db, case_id, f"case.{field}", context.actor, text,
                    details={"run_id": context.run_id, "step_id": context.step_id})
    audit.append(context.db, context.actor, "case.update", "case", case_id, before=before,
                 after=case_links.snapshot(context.db, case_id),
                 details={"fields": [field], "playbook_run": context.run_id})


@action("set-severity")
def set_severity(context: ActionContext, *, level: str, only_raise: bool = True) -> ActionResult:
    """Set the case severity to ``level`` (by default only ever raising it)."""
    wanted = Severity.parse(level)
    current = Severity(context.case["severity"])
    if wanted == current or (only_raise and wanted < current):
        return ActionResult(f"severity stays {current.value}", {"severity": current.value})
    _change(context, "severity", wanted.value,
            f"severity: {current.value} → {wanted.value} (playbook)")
    return ActionResult(f"severity {current.value} → {wanted.value}",
                        {"severity": wanted.value, "was": current.value})


@action("add-tag")
def add_tag(context: ActionContext, *, tag: str) -> ActionResult:
    """Add ``tag`` to the case (nothing when it is there already)."""
    if not _TAG.match(tag):
        raise InvalidInput(f"{tag!r} is not a tag", field="tag")
    tags = list(context.case["tags"])
    if tag in tags:
        return ActionResult(f"tag {tag} already set", {"tags": tags})
    tags.append(tag)
    _change(context, "tags", tags, f"tag added: {tag} (playbook)")
    return ActionResult(f"tag {tag} added", {"tags": tags})
