"""``pukara intel``: load, sync, stats and match threat intelligence.

``intel rematch`` lives with the case store: it calls ``enrichment.pipeline.new_hits``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from enrichment.intel.loaders import LoadReport, load_path
from enrichment.intel.matcher import IntelIndex, parse_value
from enrichment.intel.misp_sync import MispSync, connect_misp
from enrichment.intel.store import IntelStore
from pukara.cli.output import emit_json, info, safe_text, table
from pukara.core.config import load_settings
from pukara.core.errors import PukaraError
from pukara.wiring import open_engine


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``intel load|sync|stats|match``."""
    parser = subparsers.add_parser("intel", help="threat intelligence: indicators, warninglists")
    commands = parser.add_subparsers(dest="intel_command", required=True)

    load = commands.add_parser("load", help="load MISP feeds/events, STIX, lists, warninglists")
    load.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    load.add_argument("--source", default=None, help="source name (default: from the path)")
    load.add_argument(
        "--all-attributes", action="store_true", help="also load MISP attributes without to_ids"
    )
    load.add_argument("--full", action="store_true", help="reload a feed's unchanged events")
    load.add_argument("--json", action="store_true", help="print one JSON document")
    load.set_defaults(handler=run_load)

    sync = commands.add_parser("sync", help="pull published events from the MISP server")
    sync.add_argument("--full", action="store_true", help="ignore the last sync time")
    sync.add_argument("--json", action="store_true", help="print one JSON document")
    sync.set_defaults(handler=run_sync)

    stats = commands.add_parser("stats", help="indicator counts, sources, warninglists")
    stats.add_argument("--json", action="store_true", help="print one JSON document")
    stats.set_defaults(handler=run_stats)

    match = commands.add_parser("match", help="which indicators a value hits")
    match.add_argument("value")
    match.add_argument("--json", action="store_true", help="print one JSON document")
    match.set_defaults(handler=run_match)


@contextmanager
def intel_store() -> Iterator[IntelStore]:
    """The IntelStore on the configured database (engine disposed afterwards)."""
    engine: Engine = open_engine(load_settings())
    try:
        yield IntelStore(engine)
    finally:
        engine.dispose()


def _errors(reports: list[LoadReport]) -> list[dict[str, Any]]:
    return [
        {"source": f.source, "line": f.line if f.line is not None else f.record, "error": f.reason}
        for report in reports
        for f in report.failures
    ]


def run_load(args: argparse.Namespace) -> int:
    """Load every path; a path that cannot be read is reported and the rest still load."""
    reports: list[LoadReport] = []
    refused: list[dict[str, Any]] = []
    with intel_store() as store:
        for path in args.paths:
            try:
                reports.append(
                    load_path(
                        store,
                        path,
                        source=args.source,
                        include_non_ids=args.all_attributes,
                        full=args.full,
                    )
                )
            except PukaraError as exc:
                refused.append({"source": str(path), "line": None, "error": exc.message})
    document: dict[str, Any] = {
        "loaded": sum(r.loaded for r in reports),
        "rejected": sum(r.rejected for r in reports) + len(refused),
        "skipped": sum(sum(r.skipped.values()) for r in reports),
        "errors": refused + _errors(reports),
        "files": [r.as_dict() for r in reports],
    }
    if args.json:
        emit_json(document)
    else:
        table(
            "Intel load",
            ("source", "kind", "loaded", "rejected", "skipped"),
            [(r.source, r.kind, r.loaded, r.rejected, sum(r.skipped.values())) for r in reports],
        )
        for error in document["errors"][:20]:
            info(safe_text(f"{error['source']}:{error['line']}: {error['error']}"))
    return 1 if refused else 0


def run_sync(args: argparse.Namespace) -> int:
    """Pull from MISP (ExternalServiceError when unreachable or the key is refused)."""
    settings = load_settings()
    client = connect_misp(settings)
    with intel_store() as store:
        report = MispSync(store, client).sync(full=args.full)
    document = report.as_dict()
    if args.json:
        emit_json(document)
    else:
        info(
            f"MISP sync: {report.events} events, {report.loaded} indicators, "
            f"{report.rejected} rejected"
        )
    return 0


def run_stats(args: argparse.Namespace) -> int:
    """Print the store's counts."""
    with intel_store() as store:
        stats = store.stats()
    if args.json:
        emit_json(stats)
        return 0
    table("Indicators by type", ("type", "count"), sorted(stats["by_type"].items()))
    table(
        "Sources",
        ("name", "kind", "last sync", "loaded", "rejected"),
        [
            (s["name"], s["kind"], s["last_sync_at"], s["loaded"], s["rejected"])
            for s in stats["sources"]
        ],
    )
    info(
        f"{stats['indicators']} indicators, {stats['active']} active, "
        f"{len(stats['warninglists'])} warninglists"
    )
    return 0


def run_match(args: argparse.Namespace) -> int:
    """Match one value; the JSON contract is ``{"value", "hits": [...]}``."""
    _, value = parse_value(args.value)
    with intel_store() as store:
        hits = IntelIndex.from_store(store).match_value(value)
    rows = [
        {
            "indicator": h.indicator,
            "type": h.indicator_type,
            "event_uuid": h.event_uuid,
            "event_info": h.event_info,
            "source": h.source,
            "suppressed": h.suppressed,
        }
        for h in hits
    ]
    if args.json:
        emit_json({"value": value, "hits": rows})
        return 0
    if not rows:
        info(f"no indicator matches {safe_text(value)}")
        return 0
    table(
        f"Hits for {value}",
        ("indicator", "type", "source", "event", "suppressed"),
        [(r["indicator"], r["type"], r["source"], r["event_info"], r["suppressed"]) for r in rows],
    )
    return 0
