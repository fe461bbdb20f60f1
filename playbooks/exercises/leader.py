"""One scheduler leader per store, by a lease row in the database (SECURITY M2).

APScheduler 3 has no coordination between processes, so only the engine holding the lease
runs inject jobs; the others only write state (start, pause, abort) that the leader picks up.
A lease that is not renewed within ``lease`` seconds passes to the next engine that asks.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from cases.store import Store
from playbooks.exercises.tables import exercise_leader
from pukara.core.schema import utcnow

LOCK_NAME = "scheduler"


def acquire(store: Store, holder: str, lease: float) -> bool:
    """Take or renew the lease for ``holder``; False while another holder's lease is live."""
    now = utcnow()
    expires = now + timedelta(seconds=lease)
    try:
        with store.write() as conn:
            row = conn.execute(select(exercise_leader.c.holder, exercise_leader.c.expires_at)
                               .where(exercise_leader.c.name == LOCK_NAME)).first()
            if row is None:
                conn.execute(insert(exercise_leader).values(name=LOCK_NAME, holder=holder,
                                                            expires_at=expires))
                return True
            if row.holder != holder and row.expires_at > now:
                return False
            taken = conn.execute(
                update(exercise_leader)
                .where(exercise_leader.c.name == LOCK_NAME,
                       exercise_leader.c.holder == row.holder,
                       exercise_leader.c.expires_at == row.expires_at)
                .values(holder=holder, expires_at=expires)).rowcount
            return bool(taken)
    except IntegrityError:
        return False


def release(store: Store, holder: str) -> None:
    """Give the lease up (a clean stop), so the next engine need not wait for expiry."""
    with store.write() as conn:
        conn.execute(update(exercise_leader)
                     .where(exercise_leader.c.name == LOCK_NAME,
                            exercise_leader.c.holder == holder)
                     .values(expires_at=utcnow()))


def holder_of(store: Store) -> str | None:
    """Who holds a live lease now, if anyone."""
    with store.read() as conn:
        row = conn.execute(select(exercise_leader.c.holder, exercise_leader.c.expires_at)
                           .where(exercise_leader.c.name == LOCK_NAME)).first()
    return row.holder if row is not None and row.expires_at > utcnow() else None
