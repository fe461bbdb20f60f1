"""``pukara advisory publish|list|show``: advisories for the constituency.

``publish --title T --summary S [--tlp clear|green|amber] [--indicator TYPE:VALUE]...
[--recommendation R]... [--sector S]... [--entity ID]... [--json]``; ``list [--entity ID]
[--json]`` lists what the center published, or with ``--entity`` what that entity reads.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from cases.services import audit
from cases.services.advisories import AdvisoryService
from cases.services.identity import Principal, Role
from pukara.cli.common import add_json, cell, services
from pukara.cli.output import emit_json, info, table
from pukara.core.errors import InvalidInput

if TYPE_CHECKING:
    Sub = argparse._SubParsersAction[argparse.ArgumentParser]

CLI_ACTOR = audit.Actor("cli")


def register(subparsers: Sub) -> None:
    """Add ``advisory publish|list``."""
    parser = subparsers.add_parser("advisory", help="advisories for the constituency")
    commands = parser.add_subparsers(dest="advisory_command", required=True)
    publish = commands.add_parser("publish", help="publish a TLP:CLEAR/GREEN advisory "
                                                  "(AMBER only to named entities or sectors)")
    publish.add_argument("--title", required=True)
    publish.add_argument("--summary", required=True)
    publish.add_argument("--tlp", default="green")
    publish.add_argument("--indicator", action="append", default=[], metavar="TYPE:VALUE")
    publish.add_argument("--recommendation", action="append", default=[])
    publish.add_argument("--sector", action="append", default=[])
    publish.add_argument("--entity", action="append", default=[])
    add_json(publish)
    publish.set_defaults(handler=run_publish)
    listing = commands.add_parser("list", help="published advisories")
    listing.add_argument("--entity", default=None, help="what this entity reads")
    listing.add_argument("--limit", type=int, default=100)
    add_json(listing)
    listing.set_defaults(handler=run_list)


def _indicator(text: str) -> dict[str, str]:
    kind, sep, value = text.partition(":")
    if not sep or not value:
        raise InvalidInput(f"indicator {text!r} is not TYPE:VALUE (e.g. ipv4:203.0.113.7)",
                           field="indicator")
    return {"type": kind, "value": value}


def run_publish(args: argparse.Namespace) -> int:
    """Publish one advisory."""
    data: dict[str, Any] = {
        "title": args.title, "summary": args.summary, "tlp": args.tlp,
        "indicators": [_indicator(i) for i in args.indicator],
        "recommendations": args.recommendation, "sectors": args.sector,
        "entity_ids": args.entity}
    with services() as built:
        view = AdvisoryService(built.store).publish(data, CLI_ACTOR)
    if args.json:
        emit_json(view)
    else:
        info(f"published {view['number']} (TLP:{view['tlp'].upper()}, "
             f"{len(view['recipients'])} addressed recipient(s))")
    return 0


def run_list(args: argparse.Namespace) -> int:
    """List advisories (for one entity with --entity)."""
    principal = None
    if args.entity:
        principal = Principal(Role.REPORTER, 0, entity_id=args.entity)
    with services() as built:
        if principal is not None:
            built.identity.entity(args.entity)
        found = AdvisoryService(built.store).list_for(principal, limit=args.limit)
    if args.json:
        emit_json(found)
        return 0
    table("Advisories", ("number", "published", "tlp", "sectors", "title"),
          [(a["number"], a["published_at"], a["tlp"], cell(", ".join(a["sectors"]) or "all"),
            a["title"]) for a in found])
    return 0
