"""``pukara search QUERY [--json]``: alerts and cases matching the search syntax
(``entity:minsa severity:>=high "ransom"``); JSON: ``{"alerts": [...], "cases": [...]}``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from cases.search.query import FIELDS
from cases.search.service import search_backend
from pukara.cli.common import add_json, cell, services
from pukara.cli.output import emit_json, table

if TYPE_CHECKING:
    Sub = argparse._SubParsersAction[argparse.ArgumentParser]


def register(subparsers: Sub) -> None:
    """Add ``search``."""
    parser = subparsers.add_parser(
        "search", help="search alerts and cases",
        description=f"Fields: {', '.join(FIELDS)}; \"phrases\", words, -negation.")
    parser.add_argument("query", nargs="+", help='e.g. entity:minsa severity:>=high "ransom"')
    parser.add_argument("--limit", type=int, default=50)
    add_json(parser)
    parser.set_defaults(handler=run_search)


def run_search(args: argparse.Namespace) -> int:
    """Run one search as the local operator."""
    with services() as built:
        found = search_backend(built.store, built.settings).search(
            " ".join(args.query), None, limit=args.limit)
    if args.json:
        emit_json(found)
        return 0
    table("Alerts", ("id", "observed", "entity", "severity", "status", "title"),
          [(a["id"], a["observed_at"], cell(a["entity_id"]), a["severity"], a["status"],
            a["title"]) for a in found["alerts"]])
    table("Cases", ("number", "status", "severity", "tlp", "entities", "title"),
          [(c["number"], c["status"], c["severity"], c["tlp"], ", ".join(c["entity_ids"]),
            c["title"]) for c in found["cases"]])
    return 0
