"""Benchmark: a 100-entity, 20-inject exercise with bots at 600×.

CONSTRUCTED data: 100 entities in 5 sectors (``bench-NNN``, 100.64.N.0/24, ``eNNN.example``)
and a scenario built here — 20 injects five exercise minutes apart: Suricata, Wazuh and
Shadowserver alert injects for every entity, four scapy traffic injects (DNS to a C2, an HTTP
beacon carrying the EICAR string, a TLS ClientHello) and one intel inject; each alert or
traffic inject expects a report within 30 minutes with its classification. Every entity is a
bot (uniform 3–20 min, accuracy 0.8, 10 % misses) answering through the real API on
loopback; injects enter through the real pipeline. Usage::

    .venv/bin/python bench/bench_exercise.py [--entities N] [--speed X] [--home DIR]

Prints one JSON object: inject scheduling lateness (wall seconds from an inject's slot to its
start) p50/p99, how long injects took, the pipeline's throughput (records per second of
inject work, and over the whole run), the bots' requests, and the scores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

SECTORS = ("health", "government", "finance", "education", "water")
TEMPLATES: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("suricata", {"signature": "ET MALWARE Beacon to C2 ({domain})", "attacker": "198.18.8.8"},
     "malicious-code/c2-server"),
    ("wazuh", {"description": "Ransomware behaviour on {entity}", "level": 14,
               "groups": ["ransomware"]}, "malicious-code/ransomware"),
    ("shadowserver", {"report": "compromised_website", "tag": "defacement"},
     "intrusions/system-compromise"),
)


def entities(count: int) -> list[Any]:
    """Constructed constituency."""
    from pukara.core.schema import Entity

    return [Entity(id=f"bench-{n:03d}", name=f"Bench entity {n}", sector=SECTORS[n % 5],
                   cidrs=[f"100.64.{n}.0/24"], domains=[f"e{n:03d}.example"])
            for n in range(count)]


def _inject(n: int) -> dict[str, Any]:
    expect = [{"id": "report", "kind": "report", "points": 10, "within_minutes": 30}]
    at = f"T+{(n + 1) * 5 // 60}:{(n + 1) * 5 % 60:02d}"
    if n == 10:
        return {"id": f"i{n:02d}", "at": at, "kind": "intel",
                "args": {"indicators": [{"type": "domain", "value": "c2.bench.example"}]}}
    if n % 5 == 4:
        return {"id": f"i{n:02d}", "at": at, "kind": "traffic", "expectations": [
            *expect, {"id": "classify", "kind": "classification", "points": 5,
                      "within_minutes": 30, "classification": "malicious-code/c2-server"}],
            "args": {"pattern": ["dns_c2", "http_beacon", "tls_sni"],
                     "c2_domain": "c2.bench.example", "sni": "c2.bench.example"}}
    template, args, classification = TEMPLATES[n % 3]
    return {"id": f"i{n:02d}", "at": at, "kind": "alert", "args": {"template": template, **args},
            "expectations": [*expect, {"id": "classify", "kind": "classification", "points": 5,
                                       "within_minutes": 30, "classification": classification}]}


def scenario() -> Any:
    """The constructed 20-inject scenario."""
    from playbooks.exercises.model import Scenario

    return Scenario.model_validate({
        "id": "bench-exercise", "title": "Benchmark exercise (constructed)",
        "participants": [{"sector": s} for s in SECTORS],
        "timeline": [_inject(n) for n in range(20)],
        "bots": {"seed": 5, "default": {"reaction": {"distribution": "uniform", "low": 3,
                                                      "high": 20},
                                         "accuracy": 0.8, "miss_chance": 0.1}}})


def expected_met(count: int) -> int:
    """Expectations the bots' seeded plans would meet if every answer landed on time."""
    from playbooks.exercises.bots import plan

    chosen = scenario()
    met = 0
    for inject in chosen.timeline:
        for entity in entities(count):
            decided = plan(chosen.bots, entity.id, inject.id)
            met += sum(1 for e in inject.expectations if decided.respond
                       and decided.delay_minutes <= e.within_minutes
                       and (e.kind.value != "classification" or decided.correct))
    return met


def _pct(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 4)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 4)


def measure(count: int, speed: float, workers: int) -> dict[str, Any]:
    """Run the exercise and collect the figures."""
    from playbooks.exercises import runs
    from pukara.exercise_runtime import RunOptions, run
    from pukara.wiring import build_services

    services = build_services()
    try:
        services.identity.upsert_entities(entities(count))
        began = time.perf_counter()
        result = run(services, scenario(), RunOptions(speed=speed, bots=["all"],
                                                      bot_workers=workers))
        wall = time.perf_counter() - began
        injects = runs.status(services.store, result["exercise_id"])["injects"]
    finally:
        services.close()
    late = [i["lateness_seconds"] for i in injects if i["lateness_seconds"] is not None]
    took = [i["duration_seconds"] for i in injects if i["duration_seconds"] is not None]
    records = sum((i["result"] or {}).get("accepted", 0) + (i["result"] or {}).get(
        "duplicates", 0) for i in injects if i["kind"] in ("alert", "traffic"))
    work = sum(i["duration_seconds"] or 0 for i in injects if i["kind"] in ("alert", "traffic"))
    return {
        "benchmark": "exercise", "entities": count, "injects": len(injects), "speed": speed,
        "status": result["status"], "wall_seconds": round(wall, 2),
        "inject_states": {s: sum(1 for i in injects if i["state"] == s)
                          for s in sorted({i["state"] for i in injects})},
        "lateness_seconds": {"p50": _pct(late, 50), "p99": _pct(late, 99),
                             "max": round(max(late), 4) if late else None},
        "inject_duration_seconds": {"p50": _pct(took, 50), "p99": _pct(took, 99)},
        "pipeline": {"records": records, "seconds_in_injects": round(work, 2),
                     "records_per_second": round(records / work, 1) if work else None,
                     "records_per_wall_second": round(records / wall, 1)},
        "bots": {"workers": workers, "requests": result["bot_requests"],
                 "errors": len(result["bot_errors"]),
                 "first_errors": result["bot_errors"][:2],
                 "request_seconds": result["bot_request_seconds"],
                 "requests_per_wall_second": round(result["bot_requests"] / wall, 1)},
        "expected_met_from_bot_plans": expected_met(count),
        "scores": {"points": sum(s["points"] for s in result["scores"]),
                   "max_points": sum(s["max_points"] for s in result["scores"]),
                   "met": sum(s["met"] for s in result["scores"]),
                   "missed": sum(s["missed"] for s in result["scores"]),
                   "pending": sum(s["pending"] for s in result["scores"])},
    }


def main() -> None:
    """Parse arguments, run, print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100)
    parser.add_argument("--speed", type=float, default=600.0)
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--bot-workers", type=int, default=4)
    args = parser.parse_args()
    os.environ["PUKARA_HOME"] = str(args.home or tempfile.mkdtemp(prefix="pukara-bench-"))
    document = measure(args.entities, args.speed, args.bot_workers)
    sys.stdout.write(orjson.dumps(document).decode() + "\n")


if __name__ == "__main__":
    main()
