"""National campaign alerts: one alert per correlation campaign, kept up to date.

The correlation enricher reports campaigns created or joined by new entities; each becomes
(or updates) one alert with ``source = "correlation"`` whose fingerprint is derived from the
campaign key, so it is never duplicated. The alert belongs to no entity (it is the center's)
and lists the entity ids in ``extra``; entity principals never see it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC

from sqlalchemy import Connection, bindparam, insert, select, update

from cases.store.tables import alerts
from enrichment.correlation import Campaign
from pukara.core.errors import InvalidInput
from pukara.core.observables import ObservableType
from pukara.core.schema import MAX_TITLE, Alert, Observable, construct, undetermined, utcnow
from pukara.core.taxonomy import TLP, Severity

SOURCE = "correlation"
LOOKUP_CHUNK = 500
ALERT_PRINTS = 20


def campaign_fingerprint(campaign: Campaign) -> str:
    """The alert fingerprint of a campaign: stable over its whole life."""
    return hashlib.sha256(f"campaign\x1f{campaign.key}".encode()).hexdigest()


def campaign_alert(campaign: Campaign) -> Alert:
    """The alert that stands for ``campaign``."""
    kind, _, value = campaign.observable.removeprefix("indicator:").partition(":")
    observables = []
    try:
        observables.append(Observable(type=ObservableType(kind), value=value))
    except (ValueError, InvalidInput):
        observables = []
    count = len(campaign.entity_ids)
    return construct(Alert, {  # every field ours and typed (checked against Alert(...) in tests)
        "source": SOURCE,
        "source_ref": campaign.key,
        "entity_id": None,
        "title": f"National campaign: {campaign.observable} seen at {count} entities"[:MAX_TITLE],
        "description": "",
        "classification": undetermined(),
        "severity": Severity.HIGH if count < 10 else Severity.CRITICAL,
        "tlp": TLP.AMBER,
        "observed_at": campaign.first_seen.astimezone(UTC),
        "received_at": utcnow(),
        "signature": "cross-entity correlation",
        "signature_id": campaign.key,
        "flow": None,
        "observables": observables,
        "attachments": [],
        "hits": [],
        "tags": [],
        "extra": {"campaign": _summary(campaign), "entities": count},
        "raw": None,
        "exercise_id": campaign.exercise_id or None,
    })


def _summary(campaign: Campaign) -> dict[str, object]:
    """The campaign as its alert carries it: everything but the alert fingerprints, of which
    only the newest ALERT_PRINTS (the full list, up to 1,000, is in ``intel_campaigns``;
    copying it into the alert made every refresh rewrite ~70 KB)."""
    data = campaign.as_dict()
    prints = data.pop("alert_fingerprints")
    return {**data, "alerts": len(prints), "alert_fingerprints": prints[-ALERT_PRINTS:]}


def record_campaigns(conn: Connection, campaigns: Iterable[Campaign]) -> int:
    """Create or refresh the campaign alerts inside ``conn``; returns how many.

    One look-up for the whole set, then one multi-row insert and one multi-row update: a
    busy batch touches thousands of campaigns.
    """
    prepared = {campaign_fingerprint(c): (c, campaign_alert(c)) for c in campaigns}
    if not prepared:
        return 0
    prints = list(prepared)
    existing: dict[str, int] = {}
    for start in range(0, len(prints), LOOKUP_CHUNK):
        found = conn.execute(select(alerts.c.fingerprint, alerts.c.id).where(
            alerts.c.fingerprint.in_(prints[start:start + LOOKUP_CHUNK])))
        existing.update((row.fingerprint, row.id) for row in found)
    inserts: list[dict[str, object]] = []
    updates: list[dict[str, object]] = []
    for fingerprint, (campaign, alert) in prepared.items():
        values = {
            "title": alert.title, "severity": alert.severity.value,
            "last_seen": campaign.last_seen, "count": len(campaign.entity_ids),
            "doc": alert.model_dump_json(exclude={"raw", "attachments"}),
        }
        if fingerprint in existing:
            updates.append({"row_id": existing[fingerprint], **values})
            continue
        inserts.append({
            "fingerprint": fingerprint, "source": SOURCE, "source_ref": campaign.key,
            "entity_id": None, "classification": str(alert.classification),
            "tlp": alert.tlp.value, "status": "new", "observed_at": campaign.first_seen,
            "first_seen": campaign.first_seen, "hit_count": 0,
            "exercise_id": alert.exercise_id, "raw": None, **values,
        })
    if inserts:
        conn.execute(insert(alerts), inserts)
    if updates:
        conn.execute(update(alerts).where(alerts.c.id == bindparam("row_id")), updates)
    return len(prepared)
