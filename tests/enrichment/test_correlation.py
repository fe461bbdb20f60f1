"""Cross-entity correlation: thresholds, window, persistence across restarts, exercises."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from enrichment.correlation import CorrelationEnricher, campaign_key
from enrichment.intel import loaders
from enrichment.intel.matcher import IntelIndex
from enrichment.intel.store import IntelStore
from enrichment.intel.tables import campaigns, sightings
from enrichment.pipeline import IntelEnricher
from pukara.core.observables import ObservableType as T
from pukara.core.schema import Alert, Indicator, Observable

T0 = datetime(2026, 11, 20, 8, 0)
C2 = "203.0.113.66"  # constructed alerts throughout; documentation addresses


def _alert(entity: str | None, ip: str = C2, at: datetime = T0, exercise: str | None = None,
           title: str = "beacon") -> Alert:
    return Alert(source="ids", title=title, entity_id=entity, observed_at=at,
                 exercise_id=exercise, signature=title,
                 observables=[Observable(type=T.IPV4, value=ip, role="dst"),
                              Observable(type=T.IPV4, value=f"192.0.2.{len(entity or '')}",
                                         role="context")])


def test_three_entities_make_one_campaign(engine: sa.Engine) -> None:
    enricher = CorrelationEnricher(engine)
    batch = [_alert("minsa"), _alert("onpe", at=T0 + timedelta(hours=2)), _alert(None)]
    enricher.enrich(batch)
    assert enricher.campaigns == []
    assert all(h.kind != "correlation" for a in batch for h in a.hits)
    third = _alert("sunat", at=T0 + timedelta(hours=5))
    enricher.enrich([third])
    (campaign,) = enricher.campaigns
    assert campaign.key == campaign_key("", f"ipv4:{C2}")
    assert (campaign.observable, campaign.exercise_id, campaign.created) == (
        f"ipv4:{C2}", None, True)
    assert campaign.entity_ids == ["minsa", "onpe", "sunat"]
    assert campaign.first_seen.replace(tzinfo=None) == T0
    assert campaign.last_seen.replace(tzinfo=None) == T0 + timedelta(hours=5)
    assert set(campaign.alert_fingerprints) == {batch[0].fingerprint(), batch[1].fingerprint(),
                                                third.fingerprint()}
    (hit,) = [h for h in third.hits if h.kind == "correlation"]
    assert hit.observable == f"ipv4:{C2}"
    assert hit.meta == {"campaign": campaign.key, "entities": 3}  # a count, never the ids
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(campaigns)).scalar() == 1


def test_context_observables_do_not_correlate(engine: sa.Engine) -> None:
    enricher = CorrelationEnricher(engine, min_entities=2)
    enricher.enrich([_alert("aa", ip="198.51.100.1"), _alert("bb", ip="198.51.100.2")])
    # both alerts carry 192.0.2.2 as a context observable: no campaign from it
    assert enricher.campaigns == []


def test_survives_restarts_and_grows(engine: sa.Engine) -> None:
    CorrelationEnricher(engine).enrich([_alert("minsa"), _alert("onpe")])
    restarted = CorrelationEnricher(engine)
    restarted.enrich([_alert("sunat", at=T0 + timedelta(hours=1))])
    (created,) = restarted.campaigns
    assert created.entity_ids == ["minsa", "onpe", "sunat"]
    again = CorrelationEnricher(engine)
    again.enrich([_alert("essalud", at=T0 + timedelta(hours=3))])
    (grown,) = again.campaigns
    assert (grown.key, grown.created, grown.new_entities) == (created.key, False, ["essalud"])
    assert grown.entity_ids == ["essalud", "minsa", "onpe", "sunat"]
    again.enrich([_alert("onpe", at=T0 + timedelta(hours=4))])
    assert again.campaigns == []  # nothing new to report; the record is still updated
    with engine.connect() as conn:
        row = conn.execute(sa.select(campaigns)).one()
        assert row.entity_ids == ["essalud", "minsa", "onpe", "sunat"]
        assert row.last_seen == T0 + timedelta(hours=4)
        counts = conn.execute(sa.select(sightings.c.count).where(
            sightings.c.entity_id == "onpe")).scalars().all()
        assert sorted(counts) == [1, 2]  # the log keeps a snapshot per write: new, +4 h


def test_window_is_respected_and_configurable(engine: sa.Engine) -> None:
    alerts = [_alert("aa"), _alert("bb", at=T0 + timedelta(hours=1)),
              _alert("cc", at=T0 + timedelta(hours=30))]
    narrow = CorrelationEnricher(engine)
    narrow.enrich(alerts)
    assert narrow.campaigns == []
    wide = CorrelationEnricher(engine, window=timedelta(hours=48))
    wide.enrich([_alert("dd", at=T0 + timedelta(hours=31))])
    assert wide.campaigns[0].entity_ids == ["aa", "bb", "cc", "dd"]


def test_exercise_and_real_alerts_never_mix(engine: sa.Engine) -> None:
    enricher = CorrelationEnricher(engine)
    enricher.enrich([_alert("aa"), _alert("bb"), _alert("cc", exercise="ex-1")])
    assert enricher.campaigns == []
    enricher.enrich([_alert("dd", exercise="ex-1"), _alert("ee", exercise="ex-1")])
    (campaign,) = enricher.campaigns
    assert (campaign.exercise_id, campaign.entity_ids) == ("ex-1", ["cc", "dd", "ee"])
    assert campaign.key == campaign_key("ex-1", f"ipv4:{C2}")


def test_indicator_ranges_and_warninglists(engine: sa.Engine, shared_data: Path) -> None:
    store = IntelStore(engine)
    loaders.load_path(store, shared_data / "stix/apt1.json")  # real: 223.166.0.0/15
    loaders.load_path(store, shared_data / "warninglists/public-dns-v4.json")
    store.upsert([Indicator(type=T.IPV4, value="8.8.8.8", source="constructed")])
    index = IntelIndex.from_store(store)
    alerts = [_alert("aa", ip="223.166.0.1"), _alert("bb", ip="223.167.9.9"),
              _alert("cc", ip="223.166.200.7"),
              _alert("aa", ip="8.8.8.8"), _alert("bb", ip="8.8.8.8"), _alert("cc", ip="8.8.8.8")]
    IntelEnricher(index).enrich(alerts)
    enricher = CorrelationEnricher(engine, intel=index)
    enricher.enrich(alerts)
    # different addresses in one indicator range correlate; warninglisted 8.8.8.8 does not
    assert [c.observable for c in enricher.campaigns] == ["indicator:cidr:223.166.0.0/15"]
    assert enricher.campaigns[0].entity_ids == ["aa", "bb", "cc"]


def test_prune_and_purge_old_sightings(engine: sa.Engine) -> None:
    enricher = CorrelationEnricher(engine)
    enricher.enrich([_alert("aa"), _alert("bb", ip="198.51.100.5", at=T0 + timedelta(days=3))])
    assert enricher.prune(now=T0 + timedelta(days=3)) == 1  # the T0 sighting left memory
    assert enricher.purge(before=T0 + timedelta(days=2)) == 1
    with engine.connect() as conn:
        keys = conn.execute(sa.select(sightings.c.observable_key)).scalars().all()
    assert keys == ["ipv4:198.51.100.5"]


@pytest.mark.postgres
def test_correlation_on_postgresql(pg_engine: sa.Engine) -> None:
    CorrelationEnricher(pg_engine).enrich([_alert("aa"), _alert("bb")])
    restarted = CorrelationEnricher(pg_engine)
    restarted.enrich([_alert("cc", at=T0 + timedelta(hours=1))])
    (campaign,) = restarted.campaigns
    assert campaign.entity_ids == ["aa", "bb", "cc"]
    assert CorrelationEnricher(pg_engine).stored_campaigns()[0].key == campaign.key
