"""Actions that look again at what a case holds: ``re-enrich`` (observables against the
current intel) and ``yara-scan-evidence`` (the evidence files of its incident reports)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from cases.services import case_links, timeline
from cases.services.evidence import EvidenceStore
from cases.store.tables import evidence
from cases.store.tables_cases import case_observables
from playbooks.actions import (
    ActionContext,
    ActionFailed,
    ActionResult,
    IntelLookup,
    YaraLookup,
    action,
)


@action("re-enrich")
def re_enrich(context: ActionContext) -> ActionResult:
    """Match every observable of the case against the intel store; new hits are kept."""
    if context.tools.intel is None:
        raise ActionFailed("no intel store is configured for playbooks")
    rows = context.db.execute(select(case_observables.c.type, case_observables.c.value)
                                .where(case_observables.c.case_id == context.case["id"])
                                .order_by(case_observables.c.id)).all()
    found: list[tuple[str, str, str, list[dict[str, Any]]]] = []
    for row in rows:
        hits = [h for h in context.tools.intel(row.type, row.value) if not h.get("suppressed")]
        if hits:
            found.append((row.type, row.value, "playbook", hits))
    case_links.add_observables(context.db, context.case["id"], found)
    matched = sorted(f"{kind}:{value}" for kind, value, _, _ in found)
    if matched:
        timeline.record(context.db, context.case["id"], "playbook.enrich", context.actor,
                        f"re-enrichment: {len(matched)} observables hit intel",
                        details={"observables": matched[:100]})
    return ActionResult(f"{len(rows)} observables checked, {len(matched)} with intel hits",
                        {"checked": len(rows), "matched": matched})


@action("yara-scan-evidence")
def yara_scan_evidence(context: ActionContext) -> ActionResult:
    """Scan each evidence file of the case's incident reports with the YARA rules."""
    ids = list(context.case["incident_ids"])
    rows = context.db.execute(select(evidence.c.sha256, evidence.c.filename).where(
        evidence.c.incident_id.in_(ids)).order_by(evidence.c.created_at)).all() if ids else []
    if not rows:
        return ActionResult("no evidence to scan", {"scanned": 0, "matches": {}})
    if context.tools.yara is None or context.tools.evidence_root is None:
        raise ActionFailed("no YARA rules or evidence store configured for playbooks")
    results: dict[str, list[str]] = {}
    blobs = EvidenceStore(Path(context.tools.evidence_root))
    for row in rows:
        results[row.sha256] = context.tools.yara(blobs.path(row.sha256))
    flagged = {sha: rules for sha, rules in results.items() if rules}
    if flagged:
        timeline.record(context.db, context.case["id"], "playbook.yara", context.actor,
                        f"YARA: {len(flagged)} of {len(results)} evidence files match",
                        details={"matches": flagged})
    return ActionResult(f"{len(results)} evidence files scanned, {len(flagged)} match",
                        {"scanned": len(results), "matches": flagged})


def intel_lookup(engine: Engine) -> IntelLookup:
    """An intel lookup on the store's own intel tables (index rebuilt when intel changes)."""
    from enrichment.intel.matcher import IntelMatcher
    from enrichment.intel.store import IntelStore
    from pukara.core.observables import ObservableType

    matcher = IntelMatcher(IntelStore(engine))

    def lookup(kind: str, value: str) -> list[dict[str, Any]]:
        try:
            observable_type = ObservableType(kind)
        except ValueError:
            return []
        return [hit.model_dump(mode="json")
                for hit in matcher.index().match(observable_type, value)]

    return lookup


def yara_lookup(rule_dirs: list[Path], cache_dir: Path) -> YaraLookup:
    """A YARA lookup over the national rules plus ``rule_dirs``, compiled on first use."""
    from enrichment.yara.compiler import default_sources
    from enrichment.yara.engines import open_scanner

    state: dict[str, Any] = {}

    def lookup(path: Path) -> list[str]:
        if "scanner" not in state:
            state["scanner"] = open_scanner(default_sources(rule_dirs), cache_dir)[0]
        result = state["scanner"].scan_file(path)
        if result.error:
            raise ActionFailed(f"YARA could not scan {path.name}: {result.error}")
        return sorted(f"{match.namespace}:{match.rule}" for match in result.matches)

    return lookup
