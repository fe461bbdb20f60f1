"""Benchmark: search latency over 1,000,000 alerts and 10,000 cases in the embedded store,
and triage of one 10,000-alert group.

SYNTHETIC (constructed) data, labelled ``source = "synthetic-bench"``: alerts from a
vocabulary of IDS-style titles, 50 entities in 5 sectors, private and documentation-range
addresses, spread over 90 days; 10,000 cases with descriptions and observables. Rows go in
by ``executemany`` in 10,000-row transactions with the FTS5 index installed first and kept
the way a live store keeps it: cases by their triggers, alerts by the lagging indexer, whose
catch-up (``cases.search.fts_indexer.catch_up``, 20,000-row transactions) is timed on its own
after the load and before any query. One extra group of 10,000 alerts
(same scanner, same signature, 10 s apart) is acknowledged through the case engineer's
``TriageService.act_on_group``.

Search latency is ``FtsSearch.search`` end to end (parse, SQL, row mapping, 50 results) over
200 queries mixing field filters and words, as an analyst (everything) and as an entity
(its own alerts only). Usage::

    .venv/bin/python bench/bench_search.py [--alerts N] [--cases M] [--home DIR]

Prints one JSON object. Target: p99 < 200 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from cases.search.fts import FtsSearch, install_fts
from cases.search.fts_indexer import catch_up
from cases.services import audit
from cases.services.alert_filter import AlertFilter
from cases.services.identity import Principal, Role
from cases.services.triage import TriageService
from cases.store import Store, open_store
from pukara.core.config import load_settings

SOURCE = "synthetic-bench"
SCANNER_SOURCE = "synthetic-bench-scan"
BATCH = 10_000
START = datetime(2026, 1, 1, tzinfo=UTC)
TITLES = [
    ("Nmap SYN Port Scan Detected", "intrusion-attempts/ids-alert"),
    ("Possible Metasploit Connection", "intrusion-attempts/exploit"),
    ("ET POLICY Outbound SSH Brute Force", "intrusion-attempts/brute-force"),
    ("ICMP Ping Sweep", "information-gathering/scanner"),
    ("Ransomware note dropped on file share", "malicious-code/ransomware"),
    ("Emotet C2 beacon", "malicious-code/infected-system"),
    ("Phishing URL clicked", "fraud/phishing"),
    ("DNS query to sinkholed domain", "malicious-code/c2-server"),
    ("SQL injection attempt on web portal", "intrusion-attempts/exploit"),
    ("Defacement detected on public site", "intrusion/application-compromise"),
]
SEVERITIES = ["info", "low", "medium", "high", "critical"]
TLPS = ["clear", "green", "amber", "amber", "amber", "red"]
STATUSES = ["new", "new", "new", "acknowledged", "dismissed"]
WORDS = ["ransomware", "scan", "phishing", "beacon", "defacement", "injection", "sweep",
         "metasploit", "brute", "sinkholed", "emotet", "nmap", "portal"]
ALERT_COLUMNS = ("fingerprint", "source", "source_ref", "entity_id", "title", "classification",
                 "severity", "tlp", "status", "observed_at", "first_seen", "last_seen", "count",
                 "hit_count", "exercise_id", "doc", "raw")
INSERT_ALERT = (f"INSERT INTO alerts ({', '.join(ALERT_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(ALERT_COLUMNS))})")


def _time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _alert(rng: random.Random, n: int, entity: str, when: datetime,
           source: str = SOURCE, title_index: int | None = None,
           src: str | None = None) -> tuple[Any, ...]:
    title, classification = TITLES[title_index if title_index is not None
                                   else rng.randrange(len(TITLES))]
    src = src or f"10.{n % 250}.{(n // 250) % 250}.{n % 7 + 1}"
    dst = f"192.0.2.{n % 254 + 1}"
    doc = {"source": source, "title": title, "classification": classification,
           "signature": title, "observables": [
               {"type": "ipv4", "value": src, "role": "src"},
               {"type": "ipv4", "value": dst, "role": "dst"}]}
    stamp = _time(when)
    return (uuid.uuid4().hex, source, None, entity, title, classification,
            rng.choice(SEVERITIES), rng.choice(TLPS),
            "new" if source != SOURCE else rng.choice(STATUSES), stamp, stamp, stamp, 1, 0,
            None, orjson.dumps(doc).decode(), None)


def load_alerts(store: Store, total: int, entities: list[str], rng: random.Random) -> float:
    """Insert ``total`` synthetic alerts; returns seconds."""
    started = time.perf_counter()
    span = 90 * 24 * 3600
    for first in range(0, total, BATCH):
        rows = [_alert(rng, n, rng.choice(entities),
                       START + timedelta(seconds=rng.randrange(span)))
                for n in range(first, min(total, first + BATCH))]
        with store.write() as conn:
            conn.exec_driver_sql(INSERT_ALERT, rows)
    return time.perf_counter() - started


def load_group(store: Store, size: int) -> float:
    """One scanner hitting entity ent-00 every 10 s: a single triage group."""
    rng = random.Random(7)
    started = time.perf_counter()
    rows = [_alert(rng, n, "ent-00", START + timedelta(days=95, seconds=10 * n),
                   source=SCANNER_SOURCE, title_index=0, src="203.0.113.66")
            for n in range(size)]
    with store.write() as conn:
        conn.exec_driver_sql(INSERT_ALERT, rows)
    return time.perf_counter() - started


def load_cases(store: Store, total: int, entities: list[str], rng: random.Random) -> float:
    """Insert ``total`` synthetic cases with two entities' worth of links and observables."""
    started = time.perf_counter()
    for first in range(0, total, BATCH):
        cases, links, observables = [], [], []
        for n in range(first, min(total, first + BATCH)):
            case_id = str(uuid.uuid4())
            title, classification = TITLES[n % 10]
            when = _time(START + timedelta(seconds=rng.randrange(90 * 24 * 3600)))
            cases.append((case_id, f"CASE-2026-{n + 1:06d}", f"{title} at {entities[n % 50]}",
                          f"Synthetic case {n}: {rng.choice(WORDS)} {rng.choice(WORDS)}",
                          classification, rng.choice(SEVERITIES), rng.choice(TLPS), "amber",
                          rng.choice(["new", "in-progress", "closed"]), "[]", "[]", "bench",
                          when, when))
            links.append((case_id, entities[n % 50]))
            observables += [(case_id, "ipv4", f"10.{n % 250}.{(n // 250) % 250}.{k}",
                             "synthetic", "[]", when) for k in (1, 2)]
        with store.write() as conn:
            conn.exec_driver_sql(
                "INSERT INTO cases (id, number, title, description, classification, severity, "
                "tlp, pap, status, tags, techniques, created_by, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", cases)
            conn.exec_driver_sql("INSERT INTO case_entities (case_id, entity_id) VALUES (?, ?)",
                                 links)
            conn.exec_driver_sql(
                "INSERT INTO case_observables (case_id, type, value, origin, hits, added_at) "
                "VALUES (?, ?, ?, ?, ?, ?)", observables)
    return time.perf_counter() - started


def queries(rng: random.Random, cases: int) -> list[str]:
    """200 queries: words, phrases and field filters, alone and mixed."""
    def entity() -> str:
        return f"ent-{rng.randrange(50):02d}"
    makers: list[Callable[[], str]] = [
        lambda: rng.choice(WORDS),
        lambda: rng.choice(['"port scan"', '"ransomware note"', '"c2 beacon"']),
        lambda: f"entity:{entity()} severity:>=high",
        lambda: f"entity:{entity()} {rng.choice(WORDS)}",
        lambda: f"observable:10.{rng.randrange(250)}.{rng.randrange(250)}.{rng.randrange(1, 8)}",
        lambda: "class:malicious-code/* since:2026-02-01 until:2026-02-15",
        lambda: f"status:new source:{SOURCE} {rng.choice(WORDS)}",
        lambda: f"tlp:amber -scan entity:{entity()}",
        lambda: f"case:CASE-2026-{rng.randrange(1, cases + 1):06d}",
        lambda: "severity:critical since:2026-03-01 until:2026-03-08 " + rng.choice(WORDS),
    ]
    return [makers[n % len(makers)]() for n in range(200)]


def measure(search: FtsSearch, texts: list[str]) -> dict[str, Any]:
    """Latency of each query, alternately as an analyst and as an entity."""
    analyst = Principal(Role.ANALYST, 1, user="bench")
    timings, returned = [], 0
    for n, text in enumerate(texts):
        principal = analyst if n % 2 == 0 else Principal(Role.REPORTER, 2,
                                                          entity_id=f"ent-{n % 50:02d}")
        started = time.perf_counter()
        found = search.search(text, principal, limit=50)
        timings.append((time.perf_counter() - started) * 1000)
        returned += len(found["alerts"]) + len(found["cases"])
    timings.sort()
    return {"queries": len(texts), "results_returned": returned,
            "p50_ms": round(statistics.median(timings), 2),
            "p90_ms": round(timings[int(0.90 * len(timings)) - 1], 2),
            "p99_ms": round(timings[int(0.99 * len(timings)) - 1], 2),
            "max_ms": round(timings[-1], 2)}


def triage_group(store: Store) -> dict[str, Any]:
    """Find the scanner's group and acknowledge all of it in one transaction."""
    triage = TriageService(store)
    selection = AlertFilter(statuses=("new", "acknowledged"), source=SCANNER_SOURCE,
                            entity_id="ent-00")
    started = time.perf_counter()
    groups = triage.groups(selection)
    listed = time.perf_counter() - started
    biggest = groups[0]
    started = time.perf_counter()
    changed = triage.act_on_group(biggest.key, "acknowledged", audit.Actor("bench"),
                                  selection=selection)
    return {"group_alerts": len(biggest.alert_ids), "acknowledged": len(changed),
            "list_groups_s": round(listed, 3),
            "acknowledge_group_s": round(time.perf_counter() - started, 3)}


def main() -> None:
    """Build the store, load it, measure, print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--group", type=int, default=10_000)
    parser.add_argument("--home", type=Path, default=None)
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="pukara-bench-search-"))
    store = open_store(load_settings(home=home))
    rng = random.Random(2026)
    entities = [f"ent-{n:02d}" for n in range(50)]
    with store.write() as conn:
        install_fts(conn)
        conn.exec_driver_sql("INSERT INTO entities (id, name, sector, criticality, language, "
                             "doc, created_at, updated_at) VALUES (?, ?, ?, 2, 'es', '{}', "
                             "?, ?)", [(e, e, f"sector-{n % 5}", _time(START), _time(START))
                                       for n, e in enumerate(entities)])
    alert_s = load_alerts(store, args.alerts, entities, rng)
    group_s = load_group(store, args.group)
    case_s = load_cases(store, args.cases, entities, rng)
    started = time.perf_counter()
    indexed = catch_up(store)
    index_s = time.perf_counter() - started
    with store.write() as conn:
        conn.exec_driver_sql("ANALYZE")
    search = FtsSearch(store)
    measure(search, queries(random.Random(1), args.cases)[:20])
    latency = measure(search, queries(random.Random(2), args.cases))
    report = {
        "benchmark": "search", "data": "synthetic", "alerts": args.alerts + args.group,
        "cases": args.cases, "load_alerts_per_s": round(args.alerts / alert_s),
        "load_group_s": round(group_s, 2), "load_cases_s": round(case_s, 2),
        "index_alerts": indexed, "index_alerts_s": round(index_s, 2),
        "search": latency, "target_p99_ms": 200, "triage": triage_group(store),
        "db_bytes": (home / "pukara.db").stat().st_size,
    }
    store.close()
    print(orjson.dumps(report).decode())


if __name__ == "__main__":
    main()
