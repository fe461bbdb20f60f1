"""IntelStore: bulk upsert (SQLite and PostgreSQL), version counter, expiry, decay, stats."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from enrichment.intel.store import IntelStore
from pukara.core.observables import ObservableType as T
from pukara.core.schema import Indicator, utcnow

# Constructed indicators (made up for these tests; the event uuid is the real Glupteba one).
EVENT = "5aa2e21b-79d8-4fd7-b15d-34670a016219"


def _indicators(info: str = "Glupteba.AY research related IoCs") -> list[Indicator]:
    return [
        Indicator(type=T.DOMAIN, value="Limesdeals.com", source="eset", event_uuid=EVENT,
                  event_info=info, threat_level=1, tags=["Glupteba"]),
        Indicator(type=T.IPV4, value="80.85.157.16", source="eset", event_uuid=EVENT,
                  event_info=info, threat_level=1),
        Indicator(type=T.SHA1, value="C8D0A5C0DB3D2CCBC9C6E4F1B0C4C4E1A8D2E5F0", source="eset",
                  event_uuid=EVENT, event_info=info),
    ]


def test_upsert_inserts_then_updates_in_place(store: IntelStore) -> None:
    assert store.upsert(_indicators()) == 3
    assert store.upsert(_indicators(info="renamed")) == 3
    rows = sorted(store.iter_active(), key=lambda r: r.type)
    assert [(r.type, r.value, r.event_info) for r in rows] == [
        ("domain", "limesdeals.com", "renamed"),
        ("ipv4", "80.85.157.16", "renamed"),
        ("sha1", "c8d0a5c0db3d2ccbc9c6e4f1b0c4c4e1a8d2e5f0", "renamed"),
    ]
    assert store.stats()["indicators"] == 3


def test_batches_and_duplicates_within_a_batch(engine: sa.Engine) -> None:
    small = IntelStore(engine, batch_size=2)
    twice = _indicators() + _indicators()
    # batches of 2 distinct keys: [d, i] [s, d] [i, s]; rewritten rows count again
    assert small.upsert(twice) == 6
    assert small.stats()["indicators"] == 3


def test_version_moves_on_every_write(store: IntelStore) -> None:
    assert store.version() == 0
    store.upsert(_indicators())
    assert store.version() == 1
    store.upsert(_indicators())
    assert store.version() == 2
    store.delete_source("eset")
    assert store.version() == 3 and store.stats()["indicators"] == 0


def test_expired_indicators_stop_matching_and_purge(store: IntelStore) -> None:
    now = utcnow()
    store.upsert([
        Indicator(type=T.MD5, value="0" * 32, source="s", expires_at=now - timedelta(hours=1)),
        Indicator(type=T.MD5, value="1" * 32, source="s", expires_at=now + timedelta(days=1)),
        Indicator(type=T.MD5, value="2" * 32, source="s"),
    ])
    assert sorted(r.value for r in store.iter_active(now)) == ["1" * 32, "2" * 32]
    stats = store.stats(now)
    assert (stats["indicators"], stats["expired"], stats["active"]) == (3, 1, 2)
    assert store.purge_expired(now) == 1
    assert store.stats(now)["indicators"] == 2


def test_per_type_decay_is_configurable(engine: sa.Engine) -> None:
    now = utcnow()
    old = now - timedelta(days=100)
    indicators = [
        Indicator(type=T.IPV4, value="80.85.157.16", source="s", last_seen=old),
        Indicator(type=T.DOMAIN, value="limesdeals.com", source="s", last_seen=old),
        Indicator(type=T.SHA256, value="a" * 64, source="s", last_seen=old),
    ]
    default = IntelStore(engine)
    default.upsert(indicators)
    # default decay: IPv4 90 days (decayed), domains 365 days, hashes never
    assert sorted(r.type for r in default.iter_active(now)) == ["domain", "sha256"]
    assert default.stats(now)["decayed"] == 1
    custom = IntelStore(engine, decay={T.IPV4: None, T.DOMAIN: timedelta(days=30)})
    assert sorted(r.type for r in custom.iter_active(now)) == ["ipv4", "sha256"]
    # without last_seen the load time is the reference: fresh, so active
    default.upsert([Indicator(type=T.IPV4, value="80.85.157.17", source="s")])
    assert "80.85.157.17" in {r.value for r in default.iter_active(now + timedelta(days=89))}
    assert "80.85.157.17" not in {r.value for r in default.iter_active(now + timedelta(days=91))}


def test_source_state_round_trip(store: IntelStore) -> None:
    assert store.source("misp") is None
    store.record_source("misp", "misp-sync", location="misp server", last_timestamp=1539269987,
                        loaded=71, rejected=2)
    state = store.source("misp")
    assert state is not None
    assert (state.kind, state.last_timestamp, state.loaded, state.rejected) == (
        "misp-sync", 1539269987, 71, 2)
    store.record_source("misp", "misp-sync", loaded=0)  # no timestamp: keeps the old one
    assert store.source("misp").last_timestamp == 1539269987  # type: ignore[union-attr]


@pytest.mark.postgres
def test_store_on_postgresql(pg_engine: sa.Engine) -> None:
    store = IntelStore(pg_engine, batch_size=2)
    assert store.upsert(_indicators() + _indicators()) == 6
    assert store.upsert(_indicators(info="renamed")) == 3
    stats = store.stats()
    assert stats["indicators"] == 3
    assert stats["by_type"] == {"domain": 1, "ipv4": 1, "sha1": 1}
    assert {r.event_info for r in store.iter_active()} == {"renamed"}
    assert store.version() == 2  # one bump per upsert call
    store.record_source("eset", "misp-feed", last_timestamp=1520624753)
    assert store.source("eset").last_timestamp == 1520624753  # type: ignore[union-attr]
