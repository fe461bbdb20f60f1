"""``intel``: a partner shares indicators mid-exercise; earlier exercise alerts re-match.

Indicators go to the intel store under the source ``exercise:<id>`` (so ``purge`` removes
exactly them), then every stored alert of *this exercise* is matched again with
:func:`enrichment.pipeline.new_hits` and gains the hits it did not have. Real alerts are never
rewritten here.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select, update

from cases.store.tables import alerts
from enrichment.intel.matcher import IntelIndex
from enrichment.intel.store import IntelStore
from enrichment.pipeline import new_hits
from playbooks.exercises.injects import InjectContext, inject_kind
from pukara.core.schema import Alert, Indicator


def source_name(exercise_id: str) -> str:
    """The intel-store source of indicators an exercise published."""
    return f"exercise:{exercise_id}"


def rematch(ctx: InjectContext) -> int:
    """Add the new indicator hits to this exercise's stored alerts; returns alerts changed."""
    index = IntelIndex.from_store(IntelStore(ctx.store.engine))
    changed = 0
    with ctx.store.write() as conn:
        rows = list(conn.execute(select(alerts.c.id, alerts.c.doc)
                                 .where(alerts.c.exercise_id == ctx.exercise_id)))
        stored = [Alert.model_validate_json(row.doc) for row in rows]
        for row, alert, hits in zip(rows, stored, new_hits(stored, index), strict=True):
            if not hits:
                continue
            alert.hits.extend(hits)
            live = sum(1 for hit in alert.hits if not hit.suppressed)
            conn.execute(update(alerts).where(alerts.c.id == row.id).values(
                doc=orjson.dumps(alert.model_dump(mode="json")).decode(), hit_count=live))
            changed += 1
    return changed


@inject_kind("intel")
def intel(ctx: InjectContext) -> dict[str, Any]:
    """Publish ``args.indicators`` ([{type, value}]) and re-match earlier exercise alerts."""
    if ctx.intel is None:
        raise ValueError("no intel store was wired for this exercise")
    ctx.check()
    info = str(ctx.inject.args.get("event_info") or ctx.inject.title or "Exercise intel")
    indicators = [Indicator(type=item["type"], value=item["value"],
                            source=source_name(ctx.exercise_id), event_info=info,
                            tags=[f"exercise:{ctx.exercise_id}"], threat_level=1)
                  for item in ctx.inject.args.get("indicators", [])]
    written = ctx.intel.upsert(indicators)
    return {"indicators": written, "rematched_alerts": rematch(ctx)}
