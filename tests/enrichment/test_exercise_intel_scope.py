"""Indicators an exercise publishes never light up real alerts (or another exercise's)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine

from enrichment.intel.matcher import IntelIndex
from enrichment.intel.store import IntelStore
from enrichment.intel.tables import metadata
from enrichment.pipeline import new_hits
from pukara.core.schema import Alert, Indicator, Observable

C2 = "203.0.113.66"  # documentation range, constructed


def _alert(exercise_id: str | None) -> Alert:
    return Alert(source="suricata", title="beacon", exercise_id=exercise_id,
                 observables=[Observable(type="ipv4", value=C2)])


def test_exercise_indicators_match_only_their_own_exercise(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'intel.db'}")
    metadata.create_all(engine)
    store = IntelStore(engine)
    store.upsert([Indicator(type="ipv4", value=C2, source="exercise:ex-1"),
                  Indicator(type="ipv4", value="198.51.100.9", source="misp-national")])
    index = IntelIndex.from_store(store)
    real, own, other = _alert(None), _alert("ex-1"), _alert("ex-2")
    hits = new_hits([real, own, other], index)
    assert [[h.source for h in found] for found in hits] == [[], ["exercise:ex-1"], []]
    national = Alert(source="suricata", title="x", exercise_id="ex-1",
                     observables=[Observable(type="ipv4", value="198.51.100.9")])
    assert [h.source for h in new_hits([national], index)[0]] == ["misp-national"]
