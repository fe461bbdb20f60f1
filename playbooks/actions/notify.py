"""Actions that write to entities through the outbox: ``notify-entity``, ``notify-sector``,
``request-report-update``.

Messages are queued in the engine's transaction with the step's cause key, so a retried or
resumed step never queues the same message twice; delivery is the outbox worker's job.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from cases.store.tables import entities, incidents
from playbooks.actions import ActionContext, ActionFailed, ActionResult, action

STAGES = {"early-warning": ("early warning", "alerta temprana"),
          "notification": ("72 h incident notification", "notificación de incidente de 72 h"),
          "final-report": ("final report", "informe final"),
          "update": ("progress update", "actualización de avance")}


def case_values(context: ActionContext) -> dict[str, Any]:
    """The safe template fields of the case (no settings, no secrets: K5)."""
    case = context.case
    return {"center": context.tools.center_name, "case_number": case["number"],
            "case_title": case["title"], "classification": case["classification"],
            "severity": case["severity"], "tlp": case["tlp"]}


Text = str | dict[str, str]


def in_language(text: Text, language: str) -> str:
    """A playbook text given once, or per language (``{es: …, en: …}``)."""
    if isinstance(text, str):
        return text
    return text.get(language) or text.get("es") or next(iter(text.values()), "")


def _language(context: ActionContext, entity_id: str) -> str:
    found = context.db.execute(select(entities.c.language).where(
        entities.c.id == entity_id)).scalar_one_or_none()
    return str(found or "es")


def _queue(context: ActionContext, kind: str, entity_ids: list[str],
           values: dict[str, Any]) -> ActionResult:
    if not entity_ids:
        raise ActionFailed("the case has no entity to write to")
    total = 0
    for entity_id in entity_ids:
        language = _language(context, entity_id)
        localized = {name: in_language(value, language) if isinstance(value, dict) else value
                     for name, value in values.items()}
        total += context.outbox.enqueue(
            context.db, kind, key=f"{context.key()}:{entity_id}", entity_id=entity_id,
            values=localized, case_id=context.case["id"], actor=context.actor)
    return ActionResult(f"{kind} queued for {len(entity_ids)} entities ({total} messages)",
                        {"entities": entity_ids, "messages": total})


@action("notify-entity")
def notify_entity(context: ActionContext, *, headline: Text, message: Text) -> ActionResult:
    """Write to every entity of the case (inbox, contacts' e-mail, its webhooks)."""
    values = case_values(context) | {"headline": headline, "message": message}
    return _queue(context, "entity-notice", list(context.case["entities"]), values)


@action("notify-sector")
def notify_sector(context: ActionContext, *, headline: Text, message: Text,
                  sector: str = "case") -> ActionResult:
    """Write to every entity of ``sector`` (``case``: the sectors of the case's entities)."""
    sectors = list(context.case["sectors"]) if sector == "case" else [sector.lower()]
    query = select(entities.c.id).where(entities.c.sector.in_(sectors)).order_by(entities.c.id)
    ids = list(context.db.execute(query).scalars())
    values = case_values(context) | {"headline": headline, "message": message}
    result = _queue(context, "entity-notice", ids, values)
    result.output["sectors"] = sectors
    return result


@action("request-report-update")
def request_report_update(context: ActionContext, *, stage: str = "notification",
                          message: Text = "", due: str = "") -> ActionResult:
    """Ask the reporting entities for the next stage of their report (e.g. the 72 h one)."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}")
    rows = context.db.execute(select(incidents.c.entity_id, incidents.c.tracking_number)
                                .where(incidents.c.case_id == context.case["id"])
                                .order_by(incidents.c.created_at)).all()
    by_entity = {row.entity_id: row.tracking_number for row in rows}
    if not by_entity:
        by_entity = dict.fromkeys(context.case["entities"], "")
    total = 0
    for entity_id, tracking in by_entity.items():
        language = _language(context, entity_id)
        english, spanish = STAGES[stage]
        values = case_values(context) | {"stage": spanish if language == "es" else english,
                                         "tracking_number": tracking,
                                         "message": in_language(message, language),
                                         "due": due}
        total += context.outbox.enqueue(
            context.db, "report-update", key=f"{context.key()}:{entity_id}",
            entity_id=entity_id, values=values, case_id=context.case["id"],
            actor=context.actor)
    if not by_entity:
        raise ActionFailed("no reporting entity to ask")
    return ActionResult(f"{stage} requested from {', '.join(by_entity)} ({total} messages)",
                        {"entities": sorted(by_entity), "stage": stage, "messages": total})
