"""Benchmark: load a 1,000,000-attribute MISP feed folder into the intel store.

The feed is SYNTHETIC (constructed here, not real intel): ``events`` events in MISP's feed
layout (``<uuid>.json`` with ``{"Event": …}``, ``manifest.json``, ``hashes.csv`` with the
md5 of each value), every attribute ``to_ids``; types mixed like a real feed: sha256, md5,
sha1, domain, ip-dst, url, filename|sha256. The folder is generated in a child process so
the peak RSS reported is the loader's alone; the load (parse, normalise, upsert in batches
into SQLite on a file) is what is timed.

Usage: ``.venv/bin/python bench/bench_intel_load.py [attributes] [--database-url URL]``.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

from cases.store.engine import make_engine
from enrichment.intel.loaders import load_misp_feed
from enrichment.intel.store import IntelStore
from enrichment.intel.tables import metadata

PER_EVENT = 1000
TYPES = (
    "sha256",
    "sha256",
    "sha256",
    "md5",
    "sha1",
    "domain",
    "domain",
    "ip-dst",
    "url",
    "filename|sha256",
)


def _value(kind: str, n: int) -> str:
    digest = hashlib.sha256(n.to_bytes(8, "big")).hexdigest()
    match kind:
        case "sha256":
            return digest
        case "md5":
            return digest[:32]
        case "sha1":
            return digest[:40]
        case "domain":
            return f"h{digest[:10]}.synthetic-{n % 997}.example"
        case "ip-dst":
            return f"{11 + n % 200}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        case "url":
            return f"http://u{digest[:8]}.synthetic.example/p/{n}"
        case _:
            return f"sample-{n}.exe|{digest}"


def generate(folder: Path, attributes: int) -> None:
    """Write the synthetic feed folder."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict[str, object]] = {}
    with (folder / "hashes.csv").open("w") as hashes:
        for first in range(0, attributes, PER_EVENT):
            event_uuid = str(uuid.UUID(int=first + 1))
            attrs = []
            for n in range(first, min(first + PER_EVENT, attributes)):
                kind = TYPES[n % len(TYPES)]
                value = _value(kind, n)
                attrs.append(
                    {
                        "uuid": str(uuid.UUID(int=(1 << 100) + n)),
                        "type": kind,
                        "category": "Network activity",
                        "value": value,
                        "to_ids": True,
                        "timestamp": "1700000000",
                        "distribution": "5",
                    }
                )
                hashes.write(f"{hashlib.md5(value.encode()).hexdigest()},{event_uuid}\n")
            event = {
                "uuid": event_uuid,
                "info": f"SYNTHETIC benchmark event {first // PER_EVENT}",
                "threat_level_id": "2",
                "analysis": "2",
                "date": "2026-11-01",
                "timestamp": "1700000000",
                "published": True,
                "Orgc": {"name": "SYNTHETIC"},
                "Tag": [{"name": "tlp:green"}],
                "Attribute": attrs,
            }
            (folder / f"{event_uuid}.json").write_bytes(orjson.dumps({"Event": event}))
            manifest[event_uuid] = {
                "info": event["info"],
                "timestamp": 1700000000,
                "threat_level_id": 2,
                "Orgc": event["Orgc"],
            }
    (folder / "manifest.json").write_bytes(orjson.dumps(manifest))


def main() -> None:
    """Generate (child process), load (timed), print one JSON object."""
    parser = argparse.ArgumentParser()
    parser.add_argument("attributes", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generate(args.generate, args.attributes)
        return
    with tempfile.TemporaryDirectory(prefix="pukara-bench-intel-") as tmp:
        folder = Path(tmp) / "feed"
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, str(args.attributes), "--generate", str(folder)], check=True
        )
        generated = time.perf_counter() - started
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        engine = make_engine(url)  # the case store's engine: WAL, synchronous=FULL on SQLite
        metadata.drop_all(engine)
        metadata.create_all(engine)
        store = IntelStore(engine)
        start, cpu = time.perf_counter(), time.process_time()
        report = load_misp_feed(store, folder, source="synthetic")
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        stored = store.stats()["indicators"]
        engine.dispose()
    print(
        json.dumps(
            {
                "benchmark": "intel_load",
                "input": f"SYNTHETIC MISP feed folder: {report.events} events, {args.attributes} "
                "to_ids attributes",
                "database": url.split(":")[0],
                "generate_seconds": round(generated, 2),
                "seconds": round(seconds, 2),
                "cpu_seconds": round(cpu, 2),
                "attributes_per_s": round(args.attributes / seconds),
                "rows_written": report.loaded,
                "rows_stored": stored,
                "rejected": report.rejected,
                "peak_rss_mb": round(peak_kb / 1024),
                "targets": {"seconds": 20, "peak_rss_mb": 1536},
            }
        )
    )


if __name__ == "__main__":
    main()
