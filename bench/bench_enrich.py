"""Benchmark: the enrichers alone on batches of alerts against 1,000,000 indicators.

Everything here is SYNTHETIC (constructed): 1,000,000 indicators — 100,000 CIDRs (/16 to
/28), 300,000 IPv4 addresses, 300,000 sha256, 200,000 domains, 100,000 URLs — plus the
real public-DNS and RFC 1918 warninglists; 200 entities owning a /16 each; alerts of 5
observables (entity source address, destination address, domain, URL, sha256) of which
about one in ten hits an indicator. The index is built once (timed separately); then the
constituency, intel and correlation enrichers each run over the same batches (correlation
writes its sightings to SQLite on a file, through the case store's engine: WAL,
``synchronous=FULL``). Alert construction is not timed.

Usage: ``.venv/bin/python bench/bench_enrich.py [batches] [batch_size] [--gc-tuned]
[--pool=N] [--correlation-only]``.
Prints one JSON object (wall and CPU seconds: the machine is shared).

``--correlation-only`` skips the index and times correlation alone, as the bulk ingest's
main process runs it: per batch ``stage_seen`` on compact per-alert tuples (built untimed:
the worker processes send them), ``persist`` and the commit of the batch's transaction,
each in µs per alert (wall and CPU); then the same on Alerts (``stage``: keys, fingerprints
and hits included). Entities come from the constituency enricher (untimed).
"""

from __future__ import annotations

import gc
import hashlib
import ipaddress
import json
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import func, select

from cases.store.engine import make_engine
from enrichment.constituency import Constituency, ConstituencyEnricher
from enrichment.correlation import CorrelationEnricher, Seen, alert_keys
from enrichment.intel.matcher import IntelIndex
from enrichment.intel.store import StoredIndicator
from enrichment.intel.tables import metadata, sightings
from enrichment.intel.warninglists import read_warninglist
from enrichment.pipeline import IntelEnricher
from pukara.core.observables import ObservableType as T
from pukara.core.schema import Alert, Entity, Observable

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "warninglists"
rng = random.Random(20261123)


def _sha(n: int) -> str:
    return hashlib.sha256(n.to_bytes(8, "big")).hexdigest()


def _ip(n: int) -> str:
    return f"{20 + n % 100}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def _in_cidrs(n: int) -> str:
    return str(ipaddress.IPv4Address((60 << 24) + (n * 40503) % (1 << 26)))


def indicators() -> Iterator[StoredIndicator]:
    """1,000,000 synthetic indicators, one synthetic event per 1,000."""

    def item(kind: str, value: str, n: int) -> StoredIndicator:
        return StoredIndicator(
            kind,
            value,
            "synthetic",
            f"event-{n // 1000}",
            f"SYNTHETIC event {n // 1000}",
            1 + n % 4,
            ("synthetic",),
        )

    for n in range(100_000):  # networks inside 60.0.0.0/6
        prefix = 16 + n % 13
        address = ((60 << 24) + (n * 2654435761) % (1 << 26)) & ~((1 << (32 - prefix)) - 1)
        yield item("cidr", str(ipaddress.IPv4Network((address, prefix))), n)
    for n in range(300_000):
        yield item("ipv4", _ip(n), n)
    for n in range(300_000):
        yield item("sha256", _sha(n), n)
    for n in range(200_000):
        yield item("domain", f"d{n}.synthetic{n % 50}.example", n)
    for n in range(100_000):
        yield item("url", f"http://u{n}.synthetic.example/p", n)


def alerts(count: int, entities: list[Entity]) -> list[Alert]:
    """Synthetic alerts, no entity yet (the constituency enricher assigns it)."""
    made = []
    for i in range(count):
        owner = entities[i % len(entities)]
        hit = rng.random() < 0.1
        n = rng.randrange(POOL or 300_000)
        u = rng.randrange(POOL) if POOL else i  # with a pool, values repeat across alerts
        made.append(
            Alert(
                source="synthetic",
                title="SYNTHETIC alert",
                signature_id=str(i % 50),
                observables=[
                    Observable(
                        type=T.IPV4,
                        value=owner.cidrs[0].replace("0.0/16", f"{i % 200}.7"),
                        role="src",
                    ),
                    Observable(
                        type=T.IPV4, value=_ip(n) if hit else f"9.{n % 250}.{u % 250}.1", role="dst"
                    ),
                    Observable(
                        type=T.DOMAIN,
                        value=f"x.d{n % 200_000}.synthetic{n % 50}.example"
                        if hit
                        else f"benign{n}.example.org",
                    ),
                    Observable(type=T.URL, value=f"http://site{u}.example.net/{n}"),
                    Observable(type=T.SHA256, value=_sha(n) if hit else _sha(10_000_000 + u)),
                ],
            )
        )
    return made


CPU: dict[str, float] = {}
#: --pool N: draw observable values from N per kind (repeats, like real traffic); default:
#: nearly every value new (the worst case for correlation, which stores each new sighting)
POOL = next((int(a.split("=")[1]) for a in sys.argv if a.startswith("--pool=")), 0)


def timed(enricher: object, batches: list[list[Alert]]) -> float:
    """Wall seconds for all batches; CPU seconds go to CPU (the machine is shared)."""
    start, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        enricher.enrich(batch)  # type: ignore[attr-defined]
    CPU[enricher.name] = time.process_time() - cpu  # type: ignore[attr-defined]
    return time.perf_counter() - start


def _entities() -> list[Entity]:
    return [
        Entity(
            id=f"entity-{e:03d}",
            name=f"SYNTHETIC {e}",
            sector="government",
            cidrs=[f"150.{e}.0.0/16"],
        )
        for e in range(200)
    ]


def correlation_report(count: int, size: int) -> dict[str, object]:
    """The ``--correlation-only`` run."""
    entities = _entities()
    batches = [alerts(size, entities) for _ in range(count)]
    constituency = ConstituencyEnricher(Constituency(entities))
    for batch in batches:
        constituency.enrich(batch)
    if "--gc-tuned" in sys.argv:
        gc.collect()
        gc.freeze()
        gc.set_threshold(100_000, 50, 100)
    with tempfile.TemporaryDirectory(prefix="pukara-bench-correlation-") as folder:
        report = correlation_only(batches, folder)
    return {
        "benchmark": "correlation",
        "input": f"SYNTHETIC: {count * size} alerts of 5 observables, 200 entities, in batches "
        f"of {size}",
        "alerts": count * size,
        **report,
        "gc_tuned": "--gc-tuned" in sys.argv,
        "value_pool": POOL or "unique",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def _lap(spent: list[float], since: tuple[float, float]) -> tuple[float, float]:
    """Add the wall and CPU seconds since ``since`` to ``spent``; now."""
    now = time.perf_counter(), time.process_time()
    spent[0] += now[0] - since[0]
    spent[1] += now[1] - since[1]
    return now


def correlation_only(batches: list[list[Alert]], folder: str) -> dict[str, object]:
    """µs per alert of stage, persist and commit, on compact tuples and on Alerts."""
    report: dict[str, object] = {}
    total = sum(len(batch) for batch in batches)
    for path in ("stage_seen", "stage"):
        engine = make_engine(f"sqlite:///{folder}/{path}.db")  # the store's pragmas
        metadata.create_all(engine)
        enricher = CorrelationEnricher(engine)
        spent = {"stage": [0.0, 0.0], "persist": [0.0, 0.0], "commit": [0.0, 0.0]}
        marks = 0
        for batch in batches:
            seen: list[Seen] = [
                (a.entity_id, a.exercise_id or "", a.observed_at, a.fingerprint(),
                 tuple(alert_keys(a)))
                for a in batch if a.entity_id is not None
            ]
            with engine.connect() as conn:
                transaction = conn.begin()
                since = time.perf_counter(), time.process_time()
                if path == "stage_seen":
                    marks += len(enricher.stage_seen(seen))
                else:
                    enricher.stage(batch)
                since = _lap(spent["stage"], since)
                enricher.persist(conn)
                since = _lap(spent["persist"], since)
                transaction.commit()
                _lap(spent["commit"], since)
        with engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(sightings)).scalar_one()
        engine.dispose()
        per_alert = {k: [round(w / total * 1e6, 2), round(c / total * 1e6, 2)]
                     for k, (w, c) in spent.items()}
        both = [round(per_alert["stage"][i] + per_alert["persist"][i], 2) for i in (0, 1)]
        report[path] = {
            "us_per_alert_wall_cpu": per_alert,
            "stage_and_persist_us_wall_cpu": both,
            "all_us_wall_cpu": [round(sum(v[i] for v in per_alert.values()), 2) for i in (0, 1)],
            "sighting_rows": rows,
            "campaigns": len(enricher.stored_campaigns()),
            "marks": marks if path == "stage_seen" else sum(
                1 for b in batches for a in b for h in a.hits if h.kind == "correlation"),
        }
    return report


def main() -> None:
    """Build, enrich, print one JSON object."""
    numbers = [int(a) for a in sys.argv[1:] if a.isdigit()]
    count = numbers[0] if numbers else 50
    size = numbers[1] if len(numbers) > 1 else 1000
    if "--correlation-only" in sys.argv:
        print(json.dumps(correlation_report(count, size)))
        return
    lists = [read_warninglist(SHARED / f"{n}.json")[0] for n in ("public-dns-v4", "rfc1918")]
    start = time.perf_counter()
    index = IntelIndex(indicators(), lists)
    build = time.perf_counter() - start
    entities = _entities()
    batches = [alerts(size, entities) for _ in range(count)]
    if "--gc-tuned" in sys.argv:  # what a long-running pipeline should do after start-up:
        gc.collect()  # freeze the index and settings, collect the young generation less often
        gc.freeze()
        gc.set_threshold(100_000, 50, 100)
    total = count * size
    with tempfile.TemporaryDirectory(prefix="pukara-bench-enrich-") as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench.db")  # the store's: WAL, synchronous=FULL
        metadata.create_all(engine)
        seconds = {
            "constituency": timed(ConstituencyEnricher(Constituency(entities)), batches),
            "intel": timed(IntelEnricher(index), batches),
            "correlation": timed(CorrelationEnricher(engine, intel=index), batches),
        }
        engine.dispose()
    hits = sum(1 for batch in batches for a in batch for h in a.hits if h.kind == "indicator")
    all_seconds = sum(seconds.values())
    print(
        json.dumps(
            {
                "benchmark": "enrich",
                "input": f"SYNTHETIC: {index.size} indicators (100000 CIDRs), {total} alerts of 5 "
                f"observables in batches of {size}",
                "index_build_seconds": round(build, 2),
                "alerts": total,
                "indicator_hits": hits,
                "seconds": {k: round(v, 3) for k, v in seconds.items()},
                "alerts_per_s": {k: round(total / v) for k, v in seconds.items()},
                "all_enrichers_alerts_per_s": round(total / all_seconds),
                "cpu_seconds": {k: round(v, 3) for k, v in CPU.items()},
                "all_enrichers_alerts_per_cpu_s": round(total / sum(CPU.values())),
                "gc_tuned": "--gc-tuned" in sys.argv,
                "value_pool": POOL or "unique",
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
