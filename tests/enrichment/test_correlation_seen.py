"""Correlation on compact per-alert data (``stage_seen``), as the bulk ingest's main process
runs it: the same sightings, campaigns, rows and undo as ``stage`` on Alerts.

Constructed alerts and documentation addresses, as in test_correlation.py.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from enrichment.correlation import CorrelationEnricher, Seen, alert_keys, campaign_key
from enrichment.correlation_model import COUNT, ENTITY, FIRST, LAST, PRINTS, each
from enrichment.intel.tables import campaigns, metadata, sightings
from pukara.core.observables import ObservableType as T
from pukara.core.schema import Alert, Observable
from tests.enrichment.test_correlation import C2, T0, _alert

AT = T0.replace(tzinfo=UTC)
KEY = f"ipv4:{C2}"
CAMPAIGN = campaign_key("", KEY)


def _seen(entity: str, at: timedelta = timedelta(0), exercise: str = "",
          keys: tuple[str, ...] = (KEY,), fingerprint: str | None = None) -> Seen:
    return (entity, exercise, AT + at, fingerprint or f"fp-{entity}-{at}", keys)


def _of(alert: Alert) -> Seen:
    assert alert.entity_id is not None
    return (alert.entity_id, alert.exercise_id or "", alert.observed_at, alert.fingerprint(),
            tuple(alert_keys(alert)))


def _sighting_rows(engine: sa.Engine) -> list[tuple[str, str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(sightings.c.entity_id, sightings.c.observable_key,
                                      sightings.c.count)).all()
    return sorted((r.entity_id, r.observable_key, r.count) for r in rows)


def _staged(enricher: CorrelationEnricher, engine: sa.Engine,
            seen: list[Seen]) -> list[tuple[int, str, str, int]]:
    with engine.begin() as conn:
        marks = enricher.stage_seen(seen)
        enricher.persist(conn)
    return marks


@pytest.fixture
def twin(tmp_path: Path) -> sa.Engine:
    """A second database, for the enricher that runs on Alerts."""
    created = sa.create_engine(f"sqlite:///{tmp_path}/twin.db")
    metadata.create_all(created)
    yield created
    created.dispose()


def test_marks_are_the_hits_stage_adds(engine: sa.Engine, twin: sa.Engine) -> None:
    other = "198.51.100.9"

    def batches() -> list[list[Alert]]:
        first = [_alert("minsa"), _alert("onpe"), _alert(None),
                 _alert("sunat", at=T0 + timedelta(hours=1)), _alert("essalud", ip=other)]
        second = [_alert("reniec", at=T0 + timedelta(hours=2)),
                  _alert("minsa", ip=other, at=T0 + timedelta(hours=2)),
                  _alert("onpe", ip=other, at=T0 + timedelta(hours=3)),
                  _alert("sunat", at=T0 + timedelta(hours=3), title="second beacon")]
        return [first, second]

    on_alerts = CorrelationEnricher(twin)
    on_seen = CorrelationEnricher(engine)
    all_marks = []
    for alerts, same in zip(batches(), batches(), strict=True):
        on_alerts.enrich(alerts)
        marks = _staged(on_seen, engine, [_of(a) for a in same if a.entity_id is not None])
        all_marks.append(marks)
        assert [c.as_dict() for c in on_seen.campaigns] == [
            c.as_dict() for c in on_alerts.campaigns]
        with_entity = [a for a in alerts if a.entity_id is not None]
        assert marks == [(i, h.observable, h.meta["campaign"], h.meta["entities"])
                         for i, a in enumerate(with_entity)
                         for h in a.hits if h.kind == "correlation"]
    other_campaign = campaign_key("", f"ipv4:{other}")
    assert all_marks == [
        [(0, KEY, CAMPAIGN, 3), (1, KEY, CAMPAIGN, 3), (2, KEY, CAMPAIGN, 3)],
        [(0, KEY, CAMPAIGN, 4), (1, f"ipv4:{other}", other_campaign, 3),
         (2, f"ipv4:{other}", other_campaign, 3), (3, KEY, CAMPAIGN, 4)],
    ]
    assert [(c.key, c.entity_ids) for c in on_seen.campaigns] == [
        (CAMPAIGN, ["minsa", "onpe", "reniec", "sunat"]),
        (other_campaign, ["essalud", "minsa", "onpe"])]
    assert _sighting_rows(engine) == _sighting_rows(twin) == [
        ("essalud", f"ipv4:{other}", 1), ("minsa", f"ipv4:{other}", 1), ("minsa", KEY, 1),
        ("onpe", f"ipv4:{other}", 1), ("onpe", KEY, 1), ("reniec", KEY, 1), ("sunat", KEY, 1),
        ("sunat", KEY, 2)]


def test_a_campaign_is_created_by_the_third_entity_and_joined_by_the_fourth(
    engine: sa.Engine,
) -> None:
    enricher = CorrelationEnricher(engine)
    assert _staged(enricher, engine, [_seen("minsa"), _seen("onpe", timedelta(hours=1))]) == []
    assert enricher.campaigns == []
    third = _staged(enricher, engine, [_seen("sunat", timedelta(hours=2)),
                                       _seen("minsa", timedelta(hours=2))])
    assert third == [(0, KEY, CAMPAIGN, 3), (1, KEY, CAMPAIGN, 3)]
    (created,) = enricher.campaigns
    assert (created.key, created.created, created.entity_ids, created.new_entities) == (
        CAMPAIGN, True, ["minsa", "onpe", "sunat"], ["minsa", "onpe", "sunat"])
    assert (created.first_seen, created.last_seen) == (AT, AT + timedelta(hours=2))
    assert sorted(created.alert_fingerprints) == sorted(
        ["fp-minsa-0:00:00", "fp-onpe-1:00:00", "fp-sunat-2:00:00", "fp-minsa-2:00:00"])
    fourth = _staged(enricher, engine, [_seen("essalud", timedelta(hours=3))])
    assert fourth == [(0, KEY, CAMPAIGN, 4)]
    (joined,) = enricher.campaigns
    assert joined is created
    assert (joined.created, joined.new_entities, joined.entity_ids) == (
        False, ["essalud"], ["essalud", "minsa", "onpe", "sunat"])
    assert joined.last_seen == AT + timedelta(hours=3)
    # a member again: marked, but nothing new to report
    assert _staged(enricher, engine, [_seen("onpe", timedelta(hours=4))]) == [
        (0, KEY, CAMPAIGN, 4)]
    assert enricher.campaigns == []
    with engine.connect() as conn:
        row = conn.execute(sa.select(campaigns)).one()
    assert (row.key, row.entity_ids) == (CAMPAIGN, ["essalud", "minsa", "onpe", "sunat"])
    assert _sighting_rows(engine) == [  # a snapshot when new, then 5 minutes (default) later
        ("essalud", KEY, 1), ("minsa", KEY, 1), ("minsa", KEY, 2), ("onpe", KEY, 1),
        ("onpe", KEY, 2), ("sunat", KEY, 1)]


def test_an_unsaved_sighting_is_written_when_its_campaign_grows(engine: sa.Engine) -> None:
    enricher = CorrelationEnricher(engine, min_entities=2, flush_every=timedelta(hours=1))
    _staged(enricher, engine, [_seen("minsa")])
    _staged(enricher, engine, [_seen("minsa", timedelta(minutes=10))])  # not due: no row
    assert _sighting_rows(engine) == [("minsa", KEY, 1)]
    _staged(enricher, engine, [_seen("onpe", timedelta(minutes=20))])
    assert _sighting_rows(engine) == [("minsa", KEY, 1), ("minsa", KEY, 2), ("onpe", KEY, 1)]
    _staged(enricher, engine, [_seen("minsa", timedelta(minutes=30))])  # not due again
    _staged(enricher, engine, [_seen("minsa", timedelta(minutes=80))])  # an hour after
    assert _sighting_rows(engine) == [
        ("minsa", KEY, 1), ("minsa", KEY, 2), ("minsa", KEY, 4), ("onpe", KEY, 1)]


def test_a_rollback_after_persist_restores_memory(engine: sa.Engine) -> None:
    enricher = CorrelationEnricher(engine, flush_every=timedelta(hours=1))
    _staged(enricher, engine, [_seen("minsa"), _seen("onpe"),
                               _seen("onpe", timedelta(minutes=5), keys=(KEY, "domain:x.test"))])
    before = (repr(enricher._sightings), repr(enricher.stored_campaigns()))
    rows = _sighting_rows(engine)
    with pytest.raises(RuntimeError), engine.begin() as conn:  # two batches, one transaction
        assert enricher.stage_seen([_seen("sunat", timedelta(minutes=10))]) == [
            (0, KEY, CAMPAIGN, 3)]
        enricher.persist(conn)
        assert enricher.stage_seen([_seen("minsa", timedelta(minutes=15), keys=(
            KEY, "domain:x.test", "sha256:" + "ab" * 32))]) == [(0, KEY, CAMPAIGN, 3)]
        enricher.persist(conn)
        raise RuntimeError("the batch's transaction fails after persist")
    assert (repr(enricher._sightings), repr(enricher.stored_campaigns())) == before
    assert enricher.stored_campaigns() == []
    assert _sighting_rows(engine) == rows
    # replayed, the batches do what they would have done
    assert _staged(enricher, engine, [_seen("sunat", timedelta(minutes=10))]) == [
        (0, KEY, CAMPAIGN, 3)]
    assert [c.created for c in enricher.campaigns] == [True]
    assert _sighting_rows(engine) == [
        ("minsa", KEY, 1), ("onpe", "domain:x.test", 1), ("onpe", KEY, 2), ("sunat", KEY, 1)]


def test_discard_before_persist_restores_memory(engine: sa.Engine) -> None:
    enricher = CorrelationEnricher(engine, min_entities=2)
    _staged(enricher, engine, [_seen("minsa")])
    before = repr(enricher._sightings)
    assert enricher.stage_seen([_seen("onpe"), _seen("minsa", timedelta(hours=1))]) == [
        (0, KEY, CAMPAIGN, 2), (1, KEY, CAMPAIGN, 2)]
    enricher.discard()
    assert repr(enricher._sightings) == before
    assert enricher.stored_campaigns() == []


def test_exercise_keys_never_mix_with_real_ones(engine: sa.Engine) -> None:
    enricher = CorrelationEnricher(engine)
    assert _staged(enricher, engine, [_seen("aa"), _seen("bb"), _seen("cc", exercise="ex-1"),
                                      _seen("dd", exercise="ex-1")]) == []
    marks = _staged(enricher, engine, [_seen("ee", exercise="ex-1"), _seen("ff", exercise="ex-2"),
                                       _seen("gg", exercise="ex-2")])
    exercise_campaign = campaign_key("ex-1", KEY)
    assert exercise_campaign != CAMPAIGN
    assert marks == [(0, KEY, exercise_campaign, 3)]
    (campaign,) = enricher.campaigns
    assert (campaign.exercise_id, campaign.entity_ids) == ("ex-1", ["cc", "dd", "ee"])
    marks = _staged(enricher, engine, [_seen("hh"), _seen("ii", exercise="ex-1")])
    assert marks == [(0, KEY, CAMPAIGN, 3), (1, KEY, exercise_campaign, 4)]
    assert [(c.exercise_id, c.entity_ids) for c in enricher.stored_campaigns()] == [
        ("ex-1", ["cc", "dd", "ee", "ii"]), (None, ["aa", "bb", "hh"])]


def test_state_survives_a_restart(engine: sa.Engine) -> None:
    first = CorrelationEnricher(engine)
    _staged(first, engine, [_seen("aa"), _seen("bb"), _seen("aa", timedelta(minutes=1)),
                            _seen("bb", keys=("domain:x.test",))])
    restarted = CorrelationEnricher(engine)
    assert _state(restarted) == _state(first) == {
        ("", KEY, "aa"): (AT, AT + timedelta(minutes=1), 2, ("fp-aa-0:00:00", "fp-aa-0:01:00")),
        ("", KEY, "bb"): (AT, AT, 1, ("fp-bb-0:00:00",)),
        ("", "domain:x.test", "bb"): (AT, AT, 1, ("fp-bb-0:00:00",)),
    }
    assert _staged(restarted, engine, [_seen("cc", timedelta(hours=1))]) == [
        (0, KEY, CAMPAIGN, 3)]


def _state(enricher: CorrelationEnricher) -> dict[tuple[str, str, str], tuple[object, ...]]:
    """(exercise, key, entity) → (first, last, count, fingerprints) of every sighting."""
    return {(exercise, key, s[ENTITY]): (s[FIRST], s[LAST], s[COUNT], s[PRINTS])
            for exercise, by_key in enricher._sightings.items()
            for key, value in by_key.items() for s in each(value)}


def test_stage_marks_an_alert_once(engine: sa.Engine) -> None:
    enricher = CorrelationEnricher(engine, min_entities=2)
    alert = Alert(source="ids", title="beacon", entity_id="aa", observed_at=T0,
                  observables=[Observable(type=T.IPV4, value=C2, role="dst"),
                               Observable(type=T.URL, value="http://x.test/a")])
    enricher.enrich([alert, _alert("bb")])
    enricher.enrich([alert])
    assert [(h.observable, h.meta) for h in alert.hits if h.kind == "correlation"] == [
        (KEY, {"campaign": CAMPAIGN, "entities": 2})]
