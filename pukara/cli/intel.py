"""``pukara intel``: load, sync, stats, match and rematch threat intelligence."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cases.services.audit import Actor
from cases.store import open_store
from enrichment.intel.loaders import LoadReport, load_path
from enrichment.intel.matcher import IntelIndex, parse_value
from enrichment.intel.misp_sync import MispSync, connect_misp
from enrichment.intel.store import IntelStore
from pukara.cli.common import services
from pukara.cli.output import emit_json, info, safe_text, table
from pukara.core.config import load_settings
from pukara.core.errors import InvalidInput, PukaraError
from pukara.core.schema import utcnow


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

    rematch = commands.add_parser("rematch", help="match stored alerts against current intel")
    rematch.add_argument("--since", default=None,
                         help="only alerts observed since: an ISO time or e.g. 24h, 7d")
    rematch.add_argument("--json", action="store_true", help="print one JSON document")
    rematch.set_defaults(handler=run_rematch)


@contextmanager
def intel_store() -> Iterator[IntelStore]:
    """The IntelStore on the configured database (store closed cleanly afterwards)."""
    store = open_store(load_settings())
    try:
        yield IntelStore(store.engine)
    finally:
        store.close()


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    units = {"m": 60, "h": 3600, "d": 86400}
    if text[:-1].isdigit() and text[-1:] in units:
        return utcnow() - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"--since {text!r}: give an ISO time or 30m, 24h, 7d") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run_rematch(args: argparse.Namespace) -> int:
    """Add the hits stored alerts lack; prints examined/updated/new_hits."""
    from cases.services.rematch import rematch

    since = _since(args.since)
    with services() as built:
        index = IntelIndex.from_store(IntelStore(built.store.engine))
        entities = {e.id: e for e in built.identity.entities()}
        result = rematch(built.store, index, entities, since=since, actor=Actor("cli"))
    document = {"examined": result.examined, "updated": result.updated,
                "new_hits": result.new_hits}
    if args.json:
        emit_json(document)
    else:
        info(f"examined {result.examined} alerts, {result.updated} gained "
             f"{result.new_hits} new hit(s)")
    return 0


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
