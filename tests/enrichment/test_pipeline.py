"""The enricher order, IntelEnricher on a batch, every branch of the severity rule, rematch."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from enrichment import pipeline as pipeline_module
from enrichment.intel import loaders
from enrichment.intel.matcher import IntelIndex, IntelMatcher
from enrichment.intel.store import IntelStore
from enrichment.pipeline import (
    EnrichmentPipeline,
    IntelEnricher,
    build_enrichers,
    new_hits,
)
from pukara.core.config import Settings
from pukara.core.errors import ConfigError
from pukara.core.observables import ObservableType as T
from pukara.core.schema import Alert, Entity, Flow, Indicator, Observable
from pukara.core.taxonomy import Severity

GLUPTEBA = "5aa2e21b-79d8-4fd7-b15d-34670a016219"
ENTITIES = {  # constructed
    "critical": Entity(id="critical", name="C", sector="energy", criticality=1),
    "normal": Entity(id="normal", name="N", sector="health", criticality=2),
}


@pytest.fixture
def index(store: IntelStore, shared_data: Path) -> IntelIndex:
    # real intel: Glupteba (threat level 1) and the Xorist event (threat level 3)
    loaders.load_path(store, shared_data / "misp/eset/glupteba__glupteba.misp-event.json")
    loaders.load_path(store, shared_data / "misp/57c4445b-c548-4654-af0b-4be3950d210f.json")
    loaders.load_path(store, shared_data / "warninglists/public-dns-v4.json")
    store.upsert([Indicator(type=T.IPV4, value="8.8.8.8", source="constructed", threat_level=1)])
    return IntelIndex.from_store(store)


def _alert(*values: tuple[T, str], entity: str | None = None,
           severity: Severity = Severity.LOW, flow: Flow | None = None) -> Alert:
    return Alert(source="ids", title="constructed", entity_id=entity, severity=severity,
                 flow=flow, observables=[Observable(type=k, value=v) for k, v in values])


XORIST_MD5 = (T.MD5, "0749bae92ca336a02c83d126e04ec628")  # threat level 3
XORIST_SHA1 = (T.SHA1, "77b0c41b7d340b8a3d903f21347bbf06aa766b5b")
XORIST_FILE = (T.FILENAME, "3Z4wnG9603it23y.exe")
GLUPTEBA_IP = (T.IPV4, "5.101.6.132")  # threat level 1


@pytest.mark.parametrize(("values", "entity", "expected"), [
    ((), None, Severity.LOW),  # no hit: unchanged
    ((XORIST_MD5,), None, Severity.LOW),  # a threat level 3 hit alone: unchanged
    ((GLUPTEBA_IP,), None, Severity.MEDIUM),  # threat level 1–2: +1
    ((XORIST_MD5, XORIST_SHA1, XORIST_FILE), None, Severity.MEDIUM),  # ≥3 indicators: +1
    ((XORIST_MD5,), "critical", Severity.MEDIUM),  # criticality-1 entity: +1
    ((XORIST_MD5,), "normal", Severity.LOW),
    ((GLUPTEBA_IP, XORIST_MD5, XORIST_SHA1), "critical", Severity.CRITICAL),  # +3
    (((T.IPV4, "8.8.8.8"),), "critical", Severity.LOW),  # suppressed: never raises
])
def test_severity_rule(index: IntelIndex, values: tuple[tuple[T, str], ...], entity: str | None,
                       expected: Severity) -> None:
    alert = _alert(*values, entity=entity)
    IntelEnricher(index, ENTITIES).enrich([alert])
    assert alert.severity is expected


def test_severity_is_capped_and_idempotent(index: IntelIndex) -> None:
    alert = _alert(GLUPTEBA_IP, XORIST_MD5, XORIST_SHA1, entity="critical",
                   severity=Severity.HIGH)
    enricher = IntelEnricher(index, ENTITIES)
    enricher.enrich([alert])
    assert alert.severity is Severity.CRITICAL and alert.extra["intel_severity_bonus"] == 3
    hits = len(alert.hits)
    enricher.enrich([alert])
    assert alert.severity is Severity.CRITICAL and len(alert.hits) == hits == 3


def test_batch_hits_and_flow_addresses(index: IntelIndex) -> None:
    alerts = [_alert(GLUPTEBA_IP), _alert(flow=Flow(src_ip="10.0.0.1", dst_ip="5.101.6.132")),
              _alert((T.IPV4, "8.8.8.8"))]
    IntelEnricher(index).enrich(alerts)
    assert [(h.indicator, h.event_uuid) for h in alerts[1].hits] == [("5.101.6.132", GLUPTEBA)]
    assert alerts[0].hits[0].event_info == "Glupteba.AY research related IoCs"
    assert [h.suppressed for h in alerts[2].hits] == [True]
    assert alerts[0].hits[0] is not alerts[1].hits[0]  # each alert owns its hits


def test_new_hits_for_rematch(index: IntelIndex) -> None:
    alert = _alert(GLUPTEBA_IP, XORIST_MD5)
    (fresh,) = new_hits([alert], index)
    assert sorted(h.indicator for h in fresh) == ["0749bae92ca336a02c83d126e04ec628",
                                                  "5.101.6.132"]
    assert alert.hits == []  # rematch does not mutate
    alert.hits.append(fresh[0])
    assert [h.indicator for h in new_hits([alert], index)[0]] == [fresh[1].indicator]


def test_pipeline_runs_in_the_fixed_order(engine: sa.Engine, shared_data: Path) -> None:
    store = IntelStore(engine)
    loaders.load_path(store, shared_data / "misp/eset/glupteba__glupteba.misp-event.json")
    entities = [Entity(id="critical", name="C", sector="energy", criticality=1,
                       cidrs=["192.0.2.0/24"])]
    enrichers = build_enrichers(engine, entities, Settings(correlation_min_entities=3))
    pipeline = EnrichmentPipeline(reversed(enrichers))
    assert [e.name for e in pipeline.enrichers] == ["constituency", "intel", "correlation"]
    alert = Alert(source="ids", title="constructed", observables=[
        Observable(type=T.IPV4, value="192.0.2.7", role="src"),
        Observable(type=T.IPV4, value="5.101.6.132", role="dst")])
    pipeline.run([alert])
    # constituency first, so intel sees the critical entity: +1 (level 1) +1 (criticality)
    assert alert.entity_id == "critical" and alert.severity is Severity.HIGH


def test_unknown_enricher_is_a_config_error() -> None:
    class Odd:
        name = "odd"

        def enrich(self, alerts: list[Alert]) -> None:
            return None

    with pytest.raises(ConfigError, match="unknown enricher"):
        EnrichmentPipeline([Odd()])


def test_an_enricher_on_a_fixed_index_remembers_matches_across_batches(
        index: IntelIndex, store: IntelStore, monkeypatch: pytest.MonkeyPatch) -> None:
    enricher = IntelEnricher(index, ENTITIES)
    first, second = _alert(GLUPTEBA_IP), _alert(GLUPTEBA_IP, XORIST_MD5)
    enricher.enrich([first])
    enricher.enrich([second])
    assert second.hits[0] == first.hits[0] and second.hits[0] is not first.hits[0]
    assert [h.indicator for h in second.hits] == ["5.101.6.132", XORIST_MD5[1]]
    assert enricher._memo is not None and GLUPTEBA_IP in enricher._memo
    monkeypatch.setattr(pipeline_module, "MEMO_ENTRIES", 1)
    enricher.enrich([_alert(XORIST_SHA1)])  # over the bound: forgotten, then refilled
    assert list(enricher._memo) == [XORIST_SHA1]
    assert IntelEnricher(IntelMatcher(store))._memo is None  # its index can change: no memo
