"""Actions that share outward: ``export-misp`` and ``publish-advisory-draft``.

``export-misp`` calls the sharing layer (:mod:`cases.sharing.misp_export`): the TLP policy
decides first (a TLP:RED case is refused, with the reason), then the event is pushed when a
MISP client is configured (deterministic event UUID, so a repeated push updates the same
event), or only built and summarised when none is. It runs outside the engine's transaction
because the push records its own audited share.

``publish-advisory-draft`` prepares an advisory for a coordinator to publish: title, summary,
TLP, the indicators the TLP allows to share with the sector, and the sectors addressed; the
draft is the step's output and a timeline entry. Publishing (and its "advisory published"
messages) belongs to the advisory service.
"""

from __future__ import annotations

from playbooks.actions import ActionContext, ActionFailed, ActionResult, action
from pukara.core.errors import ExternalServiceError, PukaraError
from pukara.core.taxonomy import TLP


@action("export-misp", transactional=False)
def export_misp(context: ActionContext) -> ActionResult:
    """Share the case with MISP (TLP policy first)."""
    try:
        from cases.sharing.case_data import load_case
        from cases.sharing.misp_export import build_event, push
    except ImportError as exc:
        raise ActionFailed(f"the MISP export is not installed: {exc}") from exc
    export = load_case(context.store, context.case["id"])
    if context.tools.misp_client is None:
        built = build_event(export)
        return ActionResult(
            f"MISP event {built.event.uuid} built ({len(built.event.attributes)} attributes); "
            "not pushed: no MISP server configured",
            {"event_uuid": built.event.uuid, "attributes": len(built.event.attributes),
             "excluded": len(built.excluded), "pushed": False})
    try:
        summary = push(context.store, export, context.tools.misp_client, context.actor)
    except ExternalServiceError as exc:
        raise ActionFailed(str(exc)) from exc
    except PukaraError:
        raise
    return ActionResult(f"MISP event {summary['event_uuid']} pushed "
                        f"({summary['attributes']} attributes)", {**summary, "pushed": True})


@action("publish-advisory-draft")
def publish_advisory_draft(context: ActionContext, *, title: str, summary: str,
                           recommendations: list[str] | None = None,
                           sectors: list[str] | None = None) -> ActionResult:
    """Prepare an advisory draft from the case for a coordinator to review and publish."""
    from sqlalchemy import select

    from cases.services import timeline
    from cases.services.advisories import AdvisoryDraft
    from cases.store.tables_cases import case_observables

    case = context.case
    tlp = max(TLP(case["tlp"]), TLP.GREEN)
    if tlp > TLP.AMBER:
        raise ActionFailed(f"case is TLP:{tlp.value.upper()}: no advisory can be drafted")
    rows = context.db.execute(select(case_observables.c.type, case_observables.c.value)
                              .where(case_observables.c.case_id == case["id"])
                              .order_by(case_observables.c.id).limit(500)).all()
    draft = AdvisoryDraft.model_validate({
        "title": f"{title} ({case['number']})", "summary": summary, "tlp": tlp.value,
        "indicators": [{"type": r.type, "value": r.value} for r in rows],
        "recommendations": list(recommendations or []),
        "sectors": list(sectors or case["sectors"])}).model_dump(mode="json")
    timeline.record(context.db, case["id"], "playbook.advisory", context.actor,
                    f"advisory draft prepared: {draft['title']}",
                    details={"run_id": context.run_id, "indicators": len(draft["indicators"])})
    return ActionResult(f"advisory draft '{draft['title']}' with {len(rows)} indicators",
                        {"draft": draft, "case_id": case["id"]})
