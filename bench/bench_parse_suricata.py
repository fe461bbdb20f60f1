"""Benchmark: parse N synthetic Suricata EVE alert lines; print one JSON object.

The data is SYNTHETIC (generated here, not captured traffic): each line is an ``alert``
event with a src/dst IP, an HTTP hostname, URL and user agent, and a fileinfo-style
``files`` entry with a sha256 — five or more observables per line. Values are drawn from
pools (IPs, hosts, hashes) the size of a busy sensor's day, so repeats occur as in real
traffic. Usage: ``python bench/bench_parse_suricata.py [--count N] [--unique]``
(``--unique`` makes every value distinct: the worst case for the observable cache).
``construction`` gives the CPU cost of the pydantic work per line: validating the line's
Observables from scratch, ``Alert(...)`` (which re-runs every Observable normaliser) and
``build_alert`` (what the parser uses).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectors.parsers.suricata import SuricataEveParser
from pukara.core.schema import Alert, ParseFailure, RawReport

CATEGORIES = ["A Network Trojan was detected", "Web Application Attack", "Misc activity"]


def _five(event: dict) -> dict:
    """The same event with exactly five observables (src and dest IP, HTTP host, URL, file
    sha256): no user agent, no file name — the issue's "5 observables each"."""
    del event["http"]["http_user_agent"]
    del event["files"][0]["filename"]
    return event


def _event(i: int, rng: random.Random, pool: int) -> dict:
    n = i if pool == 0 else rng.randrange(pool)
    host = f"host{n % 50_000}.example{n % 97}.com"
    return {
        "timestamp": f"2026-01-14T22:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}Z",
        "flow_id": 1_000_000_000 + i,
        "event_type": "alert",
        "src_ip": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
        "src_port": 1024 + i % 60000,
        "dest_ip": f"198.51.{n >> 8 & 255}.{n & 255}",
        "dest_port": 80,
        "proto": "TCP",
        "alert": {
            "action": "allowed",
            "gid": 1,
            "signature_id": 2_000_000 + n % 5000,
            "rev": 1,
            "signature": f"ET SYNTHETIC rule {n % 5000}",
            "category": CATEGORIES[n % 3],
            "severity": 1 + n % 3,
        },
        "http": {
            "hostname": host,
            "url": f"/path/{n}/index.php?id={n % 1000}",
            "http_user_agent": "Mozilla/5.0 (synthetic)",
            "http_method": "GET",
            "status": 200,
        },
        "files": [{"filename": "index.php", "sha256": hashlib.sha256(str(n).encode()).hexdigest()}],
        "app_proto": "http",
    }


def generate(path: Path, count: int, unique: bool, *, five: bool = False) -> None:
    """Write ``count`` synthetic EVE alert lines to ``path`` (``five``: 5 observables each)."""
    rng = random.Random(42)
    pool = 0 if unique else 200_000
    with path.open("wb") as out:
        for i in range(count):
            event = _event(i, rng, pool)
            out.write(orjson.dumps(_five(event) if five else event) + b"\n")


def _per_call_us(function: Callable[[], object], calls: int = 5000) -> float:
    started = time.process_time()
    for _ in range(calls):
        function()
    return round((time.process_time() - started) / calls * 1e6, 1)


def construction_costs() -> dict[str, float]:
    """CPU microseconds per call of the pydantic work one synthetic line needs."""
    from datetime import UTC, datetime

    from collectors.parsers._common import build_alert
    from collectors.parsers.suricata import _flow, _rule, observables_of
    from pukara.core.schema import Observable

    event = _event(1, random.Random(1), 200_000)
    bag = observables_of(event)
    now = datetime.now(UTC)
    parts = {"source": "suricata", "observed_at": now, "received_at": now, "flow": _flow(event)}
    parts |= dict(observables=bag.items, extra={}, raw="x", **_rule(event))
    values = [(o.type, o.value, o.role) for o in bag.items]
    return {
        "observables_per_line": len(bag.items),
        "us_validated_observables_per_line": _per_call_us(
            lambda: [Observable(type=k, value=v, role=r) for k, v, r in values]
        ),
        "us_validated_alert": _per_call_us(lambda: Alert(**parts)),
        "us_build_alert": _per_call_us(lambda: build_alert(**dict(parts))),
    }


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--count", type=int, default=1_000_000)
    args.add_argument("--unique", action="store_true")
    options = args.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "synthetic-eve.json"
        generate(path, options.count, options.unique)
        alerts = failures = observables = 0
        parser = SuricataEveParser()
        started = time.perf_counter()
        cpu_started = time.process_time()
        with path.open("rb") as stream:
            for record in parser.parse(
                RawReport(stream=stream, source="bench", filename=path.name)
            ):
                if isinstance(record, Alert):
                    alerts += 1
                    observables += len(record.observables)
                elif isinstance(record, ParseFailure):
                    failures += 1
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "benchmark": "parse_suricata",
                "data": "synthetic EVE alert lines"
                + (" (all values unique)" if options.unique else ""),
                "lines": options.count,
                "alerts": alerts,
                "failures": failures,
                "observables": observables,
                "seconds": round(elapsed, 3),
                "lines_per_second": round(options.count / elapsed),
                "cpu_seconds": round(cpu, 3),
                "lines_per_cpu_second": round(options.count / cpu),
                "load_average_1m": round(os.getloadavg()[0], 2),
                "peak_rss_mib": round(peak_kib / 1024, 1),
                "construction": construction_costs(),
            }
        )
    )


if __name__ == "__main__":
    main()
