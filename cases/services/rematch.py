"""Re-match stored alerts against the intel store: a newly shared indicator lights up
yesterday's alerts (``pukara intel rematch --since``).

Alerts are read in id order in pages; the new hits are appended to each alert's document,
its hit count and severity raised by the intel enricher's own rule, and the whole run leaves
one audit entry. Rerunning adds nothing: hits already present are not added twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from cases.services import audit
from cases.store import Store
from cases.store.tables import alerts
from enrichment.intel.matcher import IntelIndex
from enrichment.pipeline import new_hits, raise_severity, severity_bonus
from pukara.core.schema import Alert, Entity

PAGE = 2000


@dataclass
class RematchResult:
    """What a rematch did."""

    examined: int = 0
    updated: int = 0
    new_hits: int = 0


def rematch(store: Store, index: IntelIndex, entities: Mapping[str, Entity], *,
            since: datetime | None = None, actor: audit.Actor = audit.SYSTEM) -> RematchResult:
    """Add the hits stored alerts (observed since ``since``) lack against ``index``."""
    result = RematchResult()
    last_id = 0
    while True:
        query = select(alerts.c.id, alerts.c.doc).where(alerts.c.id > last_id)
        if since is not None:
            query = query.where(alerts.c.observed_at >= since)
        with store.read() as conn:
            rows = conn.execute(query.order_by(alerts.c.id).limit(PAGE)).all()
        if not rows:
            break
        last_id = rows[-1].id
        page = [Alert.model_validate_json(row.doc) for row in rows]
        result.examined += len(page)
        changed = []
        for row, alert, hits in zip(rows, page, new_hits(page, index), strict=True):
            if not hits:
                continue
            alert.hits.extend(hits)
            entity = entities.get(alert.entity_id or "")
            raise_severity(alert, severity_bonus(alert, entity.criticality if entity else None))
            changed.append((row.id, alert))
            result.new_hits += len(hits)
        if changed:
            _save(store, changed)
            result.updated += len(changed)
    with store.write() as conn:
        audit.append(conn, actor, "intel.rematch", "alert", None,
                     details={"since": since.isoformat() if since else None,
                              "examined": result.examined, "updated": result.updated,
                              "new_hits": result.new_hits})
    return result


def _save(store: Store, changed: list[tuple[int, Alert]]) -> None:
    with store.write() as conn:
        for alert_id, alert in changed:
            conn.execute(update(alerts).where(alerts.c.id == alert_id).values(
                doc=alert.model_dump_json(exclude={"raw", "attachments"}),
                severity=alert.severity.value,
                hit_count=sum(1 for h in alert.hits if not h.suppressed),
            ))
