"""Correlation staged and persisted in the caller's transaction: a rollback undoes memory too.

Constructed alerts (documentation addresses), as in test_correlation.py.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from enrichment.correlation import CorrelationEnricher
from enrichment.intel.tables import campaigns, sightings
from tests.enrichment.test_correlation import C2, T0, _alert


def _rows(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (conn.execute(sa.select(sa.func.count()).select_from(sightings)).scalar_one(),
                conn.execute(sa.select(sa.func.count()).select_from(campaigns)).scalar_one())


def test_a_rolled_back_batch_is_undone_in_memory(engine: sa.Engine) -> None:
    enricher = CorrelationEnricher(engine, min_entities=2)
    enricher.enrich([_alert("minsa"), _alert("onpe", at=T0 + timedelta(hours=1))])
    (campaign,) = enricher.campaigns
    assert campaign.entity_ids == ["minsa", "onpe"]
    prints = list(campaign.alert_fingerprints)
    before = _rows(engine)
    late = _alert("sunat", at=T0 + timedelta(hours=2))
    with pytest.raises(RuntimeError), engine.begin() as conn:
        enricher.stage([late])
        assert enricher.campaigns[0].entity_ids == ["minsa", "onpe", "sunat"]
        enricher.persist(conn)
        raise RuntimeError("the batch's transaction fails after persist")
    assert _rows(engine) == before
    (stored,) = enricher.stored_campaigns()
    assert (stored.entity_ids, stored.members, stored.alert_fingerprints) == (
        ["minsa", "onpe"], {"minsa", "onpe"}, prints)
    assert stored.last_seen.replace(tzinfo=None) == T0 + timedelta(hours=1)
    # the same alert again joins the campaign as new, and its sighting row is written
    enricher.enrich([_alert("sunat", at=T0 + timedelta(hours=2))])
    (grown,) = enricher.campaigns
    assert (grown.entity_ids, grown.new_entities) == (["minsa", "onpe", "sunat"], ["sunat"])
    with engine.connect() as conn:
        seen_by = conn.execute(sa.select(sightings.c.entity_id).where(
            sightings.c.observable_key == f"ipv4:{C2}")).scalars().all()
    assert sorted(seen_by) == ["minsa", "onpe", "sunat"]


def test_discard_undoes_a_batch_that_was_never_persisted(engine: sa.Engine) -> None:
    enricher = CorrelationEnricher(engine, min_entities=2)
    enricher.stage([_alert("minsa"), _alert("onpe")])
    assert len(enricher.stored_campaigns()) == 1
    enricher.discard()
    assert enricher.stored_campaigns() == []
    assert _rows(engine) == (0, 0)
    enricher.enrich([_alert("minsa"), _alert("onpe")])
    assert [c.created for c in enricher.campaigns] == [True]
    assert _rows(engine) == (2, 1)


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    """The bulk ingest runs with the cyclic GC off and collects only every few batches."""
    enabled = gc.isenabled()
    gc.disable()
    yield
    if enabled:
        gc.enable()


def test_a_committed_batch_frees_its_journal_without_the_cyclic_gc(
        engine: sa.Engine, no_cyclic_gc: None) -> None:
    # the commit listeners and the connection form a reference cycle; a journal held through
    # it (two entries per sighting) would live until the next collection
    enricher = CorrelationEnricher(engine, min_entities=2)
    with engine.begin() as conn:
        enricher.stage([_alert("minsa"), _alert("onpe")])
        journal = weakref.ref(enricher._pending)  # type: ignore[arg-type]
        enricher.persist(conn)
        assert journal() is not None  # kept until the transaction ends
    assert journal() is None
    with pytest.raises(RuntimeError), engine.begin() as conn:
        enricher.stage([_alert("sunat")])
        journal = weakref.ref(enricher._pending)  # type: ignore[arg-type]
        enricher.persist(conn)
        raise RuntimeError("rolled back")
    assert journal() is None
    assert enricher.stored_campaigns()[0].entity_ids == ["minsa", "onpe"]


def test_a_failed_commit_undoes_the_batch_in_memory(engine: sa.Engine) -> None:
    # SQLAlchemy tells listeners *before* the database commits, and a failed commit fires no
    # rollback event; the journal commits itself so that memory goes back when it fails.
    # The failure is real: SQLite checks a deferred foreign key only at COMMIT.
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE parent (id TEXT PRIMARY KEY)")
        conn.exec_driver_sql("CREATE TABLE child (parent_id TEXT REFERENCES parent (id))")
    enricher = CorrelationEnricher(engine, min_entities=2)
    enricher.enrich([_alert("minsa"), _alert("onpe", at=T0 + timedelta(hours=1))])
    before = _rows(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys = ON")
        conn.commit()
        with pytest.raises(sa.exc.IntegrityError, match="FOREIGN KEY"), conn.begin():
            enricher.stage([_alert("sunat", at=T0 + timedelta(hours=2))])
            enricher.persist(conn)
            conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
            conn.exec_driver_sql("INSERT INTO child VALUES ('no-such-parent')")
    assert _rows(engine) == before
    (stored,) = enricher.stored_campaigns()
    assert stored.entity_ids == ["minsa", "onpe"]
    enricher.enrich([_alert("sunat", at=T0 + timedelta(hours=2))])
    assert enricher.campaigns[0].new_entities == ["sunat"]  # joins as new: it was undone
