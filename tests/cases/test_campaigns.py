"""Campaign alerts: created once per campaign, refreshed when entities join."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from sqlalchemy import select

from cases.services.campaigns import campaign_fingerprint, record_campaigns
from cases.store.tables import alerts
from enrichment.correlation import Campaign, campaign_key
from pukara.core.config import load_settings
from pukara.wiring import build_services

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _campaign(observable: str, entities: list[str], exercise: str = "") -> Campaign:
    return Campaign(key=campaign_key(exercise, observable), observable=observable,
                    exercise_id=exercise or None, entity_ids=entities, first_seen=T0,
                    last_seen=T0 + timedelta(minutes=len(entities)), alert_fingerprints=[])


def test_campaign_alerts_are_inserted_then_refreshed(pukara_home: Path) -> None:
    services = build_services(load_settings())
    ip = _campaign("ipv4:203.0.113.7", ["a", "b", "c"])
    domain = _campaign("domain:bad.example", ["a", "b", "d"])
    with services.store.write() as conn:
        assert record_campaigns(conn, [ip, domain]) == 2
    grown = _campaign("ipv4:203.0.113.7", ["a", "b", "c", "e"])
    drill = _campaign("ipv4:203.0.113.7", ["a", "b", "c"], exercise="drill-1")
    with services.store.write() as conn:
        assert record_campaigns(conn, [grown, drill, grown]) == 2
    with services.store.read() as conn:
        rows = {r.fingerprint: r for r in conn.execute(
            select(alerts).where(alerts.c.source == "correlation"))}
    services.close()
    assert len(rows) == 3
    refreshed = rows[campaign_fingerprint(grown)]
    assert refreshed.title == "National campaign: ipv4:203.0.113.7 seen at 4 entities"
    assert refreshed.count == 4 and refreshed.entity_id is None
    assert orjson.loads(refreshed.doc)["extra"]["campaign"]["entity_ids"] == ["a", "b", "c", "e"]
    assert refreshed.last_seen == T0 + timedelta(minutes=4)
    assert rows[campaign_fingerprint(domain)].count == 3
    assert rows[campaign_fingerprint(drill)].exercise_id == "drill-1"


def test_the_campaign_alert_is_what_a_validated_alert_would_be() -> None:
    from cases.services.campaigns import campaign_alert
    from pukara.core.schema import Alert

    for campaign in (_campaign("ipv4:203.0.113.7", ["a", "b", "c"]),
                     _campaign("indicator:domain:bad.example", list("abcdefghijkl"), "drill"),
                     _campaign("not-a-type:thing", ["a", "b", "c"])):
        built = campaign_alert(campaign)
        validated = Alert.model_validate(built.model_dump())
        assert built.model_dump() == validated.model_dump()
    assert built.observables == [] and validated.severity == "high"
    grown = campaign_alert(_campaign("indicator:domain:bad.example", list("abcdefghijkl")))
    assert grown.severity == "critical"
    assert [o.key for o in grown.observables] == ["domain:bad.example"]


def test_the_campaign_alert_keeps_only_the_newest_fingerprints() -> None:
    from cases.services.campaigns import ALERT_PRINTS, campaign_alert

    campaign = _campaign("ipv4:203.0.113.7", ["a", "b", "c"])
    campaign.add_prints(f"{n:064x}" for n in range(50))
    carried = campaign_alert(campaign).extra["campaign"]
    assert carried["alerts"] == 50 and ALERT_PRINTS == 20
    assert carried["alert_fingerprints"] == [f"{n:064x}" for n in range(30, 50)]
    assert len(campaign.alert_fingerprints) == 50  # the campaign itself keeps them all
    assert carried["entity_ids"] == ["a", "b", "c"] and carried["key"] == campaign.key
