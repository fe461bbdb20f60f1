"""Benchmark: end-to-end ingest of Suricata EVE alerts into the embedded store, enriched.

The path is the one ``pukara ingest FILE`` runs: FileSource → Suricata parser → enrichers
(constituency, intel against the loaded indicators, correlation) → batched, deduplicated
SQLite writes. Everything is SYNTHETIC (generated here, labelled so): 200 entities owning a
/16 each; 1,000,000 indicators (100,000 CIDRs, 300,000 IPv4, 300,000 sha256, 200,000
domains, 100,000 URLs) of which some match the generated traffic; N EVE alert lines of 5
observables each (bench_parse_suricata's generator; ``--observables 7`` adds a user agent and
a file name). Indicators are loaded through the intel store and the in-memory index is built
before timing (as a running server has it); both times are printed. Large EVE files take the
bulk path (worker processes parse and enrich; see pukara/bulk.py). After the timed ingest the
search index (FTS5, which lags the writes) is caught up and that time printed on its own.
``cpu_seconds`` are this process's; ``workers_cpu_seconds`` the worker processes' (reaped
when the ingest ends); ``us_cpu_per_alert`` both per alert, and their total — on 2 cores,
25,000 alerts/s needs a total of at most 80 µs. Prints one JSON object.

Usage: ``.venv/bin/python bench/bench_ingest.py [--alerts N] [--indicators N]
[--observables 5|7] [--workers N]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from bench_parse_suricata import generate as generate_eve  # noqa: E402

from cases.search.fts_indexer import catch_up  # noqa: E402
from collectors.sources.files import FileSource  # noqa: E402
from enrichment.intel.store import IntelStore  # noqa: E402
from pukara.core.config import load_settings  # noqa: E402
from pukara.core.schema import Entity, utcnow  # noqa: E402
from pukara.wiring import build_services  # noqa: E402


def _indicator_rows(total: int) -> Iterator[dict[str, Any]]:
    """Synthetic indicators; about one alert in ten of the EVE generator hits one."""
    now = utcnow()
    shares = (("cidr", 0.1), ("ipv4", 0.3), ("sha256", 0.3), ("domain", 0.2), ("url", 0.1))
    n = 0
    for kind, share in shares:
        for i in range(int(total * share)):
            n += 1
            yield {
                "type": kind, "value": _value(kind, i), "source": "synthetic-bench",
                "event_uuid": f"bench-{i // 1000}", "event_info": "SYNTHETIC benchmark event",
                "threat_level": 2, "org": "SYNTHETIC", "tags": [], "tlp": "green",
                "to_ids": True, "first_seen": None, "last_seen": None, "expires_at": None,
                "updated_at": now,
            }


def _value(kind: str, i: int) -> str:
    match kind:
        case "cidr":
            if i < 256:
                return f"198.51.{i}.0/28"
            return f"100.{64 + (i >> 16) % 64}.{i >> 8 & 255}.{(i & 15) << 4}/28"
        case "ipv4":
            return f"{20 + i % 100}.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
        case "sha256":
            return hashlib.sha256(str(i * 10).encode()).hexdigest()
        case "domain":
            return f"host{i * 10}.example{i * 10 % 97}.com" if i < 5000 else f"d{i}.bad.example"
        case _:
            return f"http://u{i}.synthetic.example/p/{i}"


def _children_cpu() -> float:
    """CPU seconds of this process's reaped children (the ingest workers, once they exit)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    """Load indicators, generate EVE, ingest, print figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--indicators", type=int, default=1_000_000)
    parser.add_argument("--observables", type=int, choices=(5, 7), default=5)
    parser.add_argument("--workers", type=int, default=0, help="0 = one per CPU core")
    args = parser.parse_args()
    os.environ["PUKARA_INGEST_WORKERS"] = str(args.workers)
    with tempfile.TemporaryDirectory(prefix="pukara-bench-") as tmp:
        home = Path(tmp) / "home"
        os.environ["PUKARA_HOME"] = str(home)
        eve = Path(tmp) / "eve.json"
        generate_eve(eve, args.alerts, unique=False, five=args.observables == 5)
        services = build_services(load_settings())
        services.identity.upsert_entities(
            Entity(id=f"entity-{k:03d}", name=f"Synthetic entity {k}", sector="government",
                   cidrs=[f"10.{k}.0.0/16"]) for k in range(200)
        )
        start = time.perf_counter()
        loaded = IntelStore(services.store.engine).upsert_rows(_indicator_rows(args.indicators))
        load_seconds = time.perf_counter() - start
        services.close()
        services = build_services(load_settings())
        start = time.perf_counter()
        services.pipeline.enrichers[0].local()  # type: ignore[attr-defined]
        index_seconds = time.perf_counter() - start
        children0 = _children_cpu()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        with FileSource().open_report(eve, fmt="suricata") as report:
            result = services.pipeline.ingest(report)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        workers_cpu = _children_cpu() - children0
        start = time.perf_counter()
        indexed = catch_up(services.store)
        search_seconds = time.perf_counter() - start
        with services.store.read() as conn:
            hits = conn.exec_driver_sql("SELECT count(*) FROM alerts WHERE hit_count > 0").scalar()
            routed = conn.exec_driver_sql(
                "SELECT count(*) FROM alerts WHERE entity_id IS NOT NULL").scalar()
        services.close()
    print(json.dumps({
        "benchmark": "ingest_end_to_end", "data": "synthetic EVE alerts and indicators",
        "alerts": args.alerts, "indicators": loaded,
        "indicator_load_seconds": round(load_seconds, 2),
        "index_build_seconds": round(index_seconds, 2),
        "observables_per_alert": args.observables, "workers": args.workers or os.cpu_count(),
        "accepted": result.accepted, "duplicates": result.duplicates, "rejected": result.rejected,
        "rows_with_hits": hits, "rows_routed": routed,
        "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
        "alerts_per_second": round(args.alerts / wall),
        "alerts_per_cpu_second": round(args.alerts / cpu),
        "workers_cpu_seconds": round(workers_cpu, 2),
        "us_cpu_per_alert": {"ingesting_process": round(cpu / args.alerts * 1e6, 1),
                             "workers": round(workers_cpu / args.alerts * 1e6, 1),
                             "total": round((cpu + workers_cpu) / args.alerts * 1e6, 1)},
        "search_index_rows": indexed, "search_index_seconds": round(search_seconds, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "worker_peak_rss_mib": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "load_average": os.getloadavg()[0],
    }))


if __name__ == "__main__":
    main()
