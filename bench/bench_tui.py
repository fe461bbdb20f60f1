"""Benchmark: the TUI on 1,000,000 alerts and 10,000 cases in the embedded store.

SYNTHETIC (constructed) data, built by ``bench_search``'s loaders (``source =
"synthetic-bench"``, 50 entities, 90 days of IDS-style alerts, executemany in 10,000-row
transactions with the FTS5 triggers installed). The app runs headless under Textual's Pilot
on a ``LocalClient`` with a frozen clock at the end of the 90 days.

Measured:
- ``launch_to_dashboard_s``: from building the services and the app to the dashboard
  showing its first loaded aggregates (every panel filled), i.e. interactive;
- ``filter_to_list_s``: for each filter typed into the alert queue, from the app handling
  the enter key to the new page painted (100 rows; the total is capped at 10,000+), read
  from timestamps the screen keeps, so Pilot's own idle waits are not counted;
- ``next_page_s``: the ``]`` key to the next page painted.

Usage::

    .venv/bin/python bench/bench_tui.py [--alerts N] [--cases M] [--home DIR]

Prints one JSON object. Target: both under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_search import START, load_alerts, load_cases

from cases.search.fts import catch_up, install_fts
from cases.store import open_store
from pukara.core.config import load_settings

FROZEN = START + timedelta(days=90)
FILTERS = (
    "severity:>=high",
    "entity:ent-07 severity:critical",
    "status:new tlp:red class:malicious-code/*",
    "ransomware",
    "observable:10.7.0.1",
    "",
)


def build_store(home: Path, alerts: int, cases: int) -> dict[str, float]:
    """The synthetic store; seconds spent loading."""
    store = open_store(load_settings(home=home))
    rng = random.Random(2026)
    entities = [f"ent-{n:02d}" for n in range(50)]
    stamp = START.strftime("%Y-%m-%d %H:%M:%S.%f")
    entity_doc = '{{"id": "{0}", "name": "{0}", "sector": "sector-{1}"}}'
    with store.write() as conn:
        install_fts(conn)
        conn.exec_driver_sql(
            "INSERT INTO entities (id, name, sector, criticality, language, doc, created_at, "
            "updated_at) VALUES (?, ?, ?, 2, 'es', ?, ?, ?)",
            [(e, e, f"sector-{n % 5}", entity_doc.format(e, n % 5), stamp, stamp)
             for n, e in enumerate(entities)])
    alert_s = load_alerts(store, alerts, entities, rng)
    case_s = load_cases(store, cases, entities, rng)
    catch_up(store)
    with store.write() as conn:
        conn.exec_driver_sql("ANALYZE")
    store.close()
    return {"load_alerts_s": round(alert_s, 1), "load_cases_s": round(case_s, 1)}


async def until(pilot: Any, done: Callable[[], bool], timeout: float = 60.0) -> float:
    """Wait (polling every 5 ms) until ``done()``; the time it took."""
    started = time.perf_counter()
    while not done():
        if time.perf_counter() - started > timeout:
            raise TimeoutError("the screen did not finish loading")
        await pilot.pause(0.005)
    return time.perf_counter() - started


async def keystroke(pilot: Any, screen: Any, key: str) -> float:
    """Seconds from the app handling ``key`` (the reload it asks for) to the new page
    painted; Pilot's own idle waits are left out."""
    before = screen.loads
    await pilot.press(key)
    await until(pilot, lambda: screen.loads > before)
    return round(float(screen.painted_at - screen.requested_at), 3)


async def drive() -> dict[str, Any]:
    """Launch, wait for the dashboard, then time filters and paging on the queue."""
    from textual.widgets import Input

    from pukara.wiring import build_services
    from tui.app import PukaraApp
    from tui.client.local import LocalClient
    from tui.screens.alerts import AlertsScreen
    from tui.screens.dashboard import DashboardScreen

    started = time.perf_counter()
    client = LocalClient(build_services(), clock=lambda: FROZEN)
    app = PukaraApp(client, clock=lambda: FROZEN, refresh_seconds=3600)
    result: dict[str, Any] = {}
    async with app.run_test(size=(160, 50), headless=True) as pilot:
        def dashboard_loaded() -> bool:
            screen = app.screen
            return isinstance(screen, DashboardScreen) and screen.painted_at > 0
        await until(pilot, dashboard_loaded)
        assert isinstance(app.screen, DashboardScreen)
        result["launch_to_dashboard_s"] = round(app.screen.painted_at - started, 3)
        await pilot.press("2")
        await until(pilot, lambda: isinstance(app.screen, AlertsScreen)
                    and app.screen.loads > 0)
        screen = app.screen
        assert isinstance(screen, AlertsScreen)
        timings: dict[str, list[Any]] = {}
        for text in FILTERS:
            field = screen.query_one("#query", Input)
            field.value = text
            field.focus()
            timings[text or "(all)"] = [await keystroke(pilot, screen, "enter"),
                                        screen.page.total_label()]
        result["filter_to_list_s"] = timings
        result["next_page_s"] = await keystroke(pilot, screen, "right_square_bracket")
    client.close()
    return result


def main() -> None:
    """Build (or reuse) the store, drive the app, print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--home", type=Path, default=None,
                        help="reuse a store built by an earlier run here")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="pukara-bench-tui-"))
    loading: dict[str, float] = {}
    if not (home / "pukara.db").exists():
        loading = build_store(home, args.alerts, args.cases)
    os.environ["PUKARA_HOME"] = str(home)
    measured = asyncio.run(drive())
    filters = [v[0] for v in measured["filter_to_list_s"].values()]
    report = {
        "benchmark": "tui", "data": "synthetic", "alerts": args.alerts, "cases": args.cases,
        **loading, **measured,
        "filter_median_s": round(statistics.median(filters), 3),
        "filter_max_s": round(max(filters), 3), "target_s": 1.0,
        "frozen_clock": FROZEN.isoformat(), "measured_at": datetime.now(UTC).isoformat(),
    }
    print(orjson.dumps(report).decode())


if __name__ == "__main__":
    main()
