"""A case as a readable Markdown report: TLP header, summary, entities, timeline, tasks,
observables with their intelligence hits, reporting deadlines of the linked incidents.

Every piece of stored text is untrusted (titles and descriptions come from entities and
feeds): Markdown and HTML metacharacters are backslash-escaped or entity-encoded and control
characters shown as visible escapes, so a title cannot inject links, images, HTML or table
cells. Observables the recipient may not receive (their own TLP) are left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select

from cases.services import audit
from cases.services.incident_models import load_views
from cases.sharing import tlp_policy
from cases.sharing.case_data import CaseExport, audited_refusal, record_share
from cases.store import Store
from cases.store.tables import incidents
from pukara.core.config import DeadlineRegime
from pukara.core.schema import utcnow

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}


def md_escape(value: Any) -> str:
    """Untrusted text made inert in Markdown: one line, metacharacters escaped."""
    text = "" if value is None else str(value)
    shown = "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
        for ch in text)
    shown = "".join(_HTML.get(ch, ch) for ch in shown)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", shown)


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(md_escape(cell) for cell in row) + " |" for row in rows]
    return lines


def render(export: CaseExport, deadlines: Sequence[dict[str, Any]] = (),
           recipient: str | None = None) -> str:
    """The report text (TLP checked for ``recipient`` first; refusals say why)."""
    tlp_policy.require(export.subject, tlp_policy.Target.MARKDOWN, recipient)
    case = export.case
    label = f"TLP:{export.tlp.value.upper()}"
    lines = [f"**{label}**", "", f"# {md_escape(case['number'])}: {md_escape(case['title'])}",
             "", "## Summary", ""]
    lines += _table(("field", "value"), [
        ("status", case["status"]), ("resolution", case["resolution"] or "-"),
        ("severity", case["severity"]), ("classification", case["classification"]),
        ("TLP", label), ("PAP", f"PAP:{case['pap'].upper()}"),
        ("assignee", case["assignee"] or "-"), ("opened", case["created_at"]),
        ("ATT&CK", ", ".join(case["techniques"]) or "-")])
    for heading, text in (("Description", case["description"]), ("Closing summary",
                                                                 case["summary"])):
        if text:
            lines += ["", f"## {heading}", "", md_escape(text)]
    lines += ["", "## Entities", ""]
    lines += _table(("entity", "name"), [(e, export.entity_names.get(e, "-"))
                                         for e in case["entity_ids"]])
    lines += ["", "## Timeline", ""]
    lines += _table(("when", "who", "what"), [(t["event_at"], t["actor"], t["text"])
                                              for t in case.get("timeline", [])])
    lines += ["", "## Tasks", ""]
    lines += _table(("task", "owner", "due", "status"),
                    [(t["title"], t.get("owner") or "-", t.get("due_at") or "-", t["status"])
                     for t in case.get("tasks", [])])
    lines += ["", "## Observables", ""]
    lines += _table(("type", "value", "TLP", "hits"), _observable_rows(export, recipient))
    lines += ["", "## Reporting deadlines", ""]
    lines += _table(("incident", "entity", "stage", "due", "state"), _deadline_rows(deadlines))
    lines += ["", f"*{label}: share only within its audience (FIRST TLP 2.0).*", ""]
    return "\n".join(lines)


def _observable_rows(export: CaseExport, recipient: str | None) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for item in export.observables:
        own = tlp_policy.Subject(tlp=item.tlp, originators=export.subject.originators,
                                 affected=export.subject.affected,
                                 partners=export.subject.partners)
        if not tlp_policy.decide(own, tlp_policy.Target.MARKDOWN, recipient):
            continue
        hits = [h.get("event_info") or h.get("rule") or h.get("indicator") or h.get("kind")
                for h in item.hits]
        rows.append((item.type, item.value, f"TLP:{item.tlp.value.upper()}",
                     "; ".join(str(h) for h in hits) or "-"))
    return rows


def _deadline_rows(views: Sequence[dict[str, Any]]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for view in views:
        states = view.get("deadline_status", {})
        for stage, field in (("early-warning", "early_warning"),
                             ("notification", "notification"), ("final", "final_report")):
            due = view["deadlines"].get(field)
            if due:
                rows.append((view["tracking_number"], view["entity_id"], stage, due,
                             states.get(stage, "-")))
    return rows


def incident_deadlines(store: Store, case_id: str,
                       default_regime: DeadlineRegime) -> list[dict[str, Any]]:
    """The public views (with deadlines) of the incidents linked to a case."""
    with store.read() as conn:
        rows = list(conn.execute(select(incidents).where(incidents.c.case_id == case_id)
                                 .order_by(incidents.c.created_at)).mappings())
        return load_views(conn, rows, default_regime=default_regime, now=utcnow())


def export_report(store: Store, export: CaseExport, default_regime: DeadlineRegime,
                  actor: audit.Actor, recipient: str | None = None) -> str:
    """Render the report and record the export in the audit log (J1)."""
    with audited_refusal(store, actor, export, "markdown", recipient):
        text = render(export, incident_deadlines(store, export.case["id"], default_regime),
                      recipient)
    record_share(store, actor, export, "markdown", recipient=recipient,
                 details={"bytes": len(text.encode())})
    return text


__all__ = ["export_report", "incident_deadlines", "md_escape", "render"]
