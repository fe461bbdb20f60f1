"""``pukara alerts``: the alert queue — list, show, groups, and triage actions.

Actions take alert ids, or ``--query`` (field filters, e.g. ``status:new entity:minsa
severity:>=high``) or ``--group KEY`` (a group from ``alerts groups``); each action is one
transaction and one audit entry.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from cases.services import audit
from cases.services.alert_filter import ALERT_STATUSES, AlertFilter, parse_query
from cases.services.triage import DISMISS_REASONS, OPEN_STATUSES
from pukara.cli.common import add_json, cell, services
from pukara.cli.output import emit_json, info, table
from pukara.core.errors import InvalidInput

if TYPE_CHECKING:
    from pukara.wiring import Services

CLI_ACTOR = audit.Actor("cli")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``alerts list|show|groups|ack|dismiss|reopen|promote``."""
    parser = subparsers.add_parser("alerts", help="the alert queue")
    commands = parser.add_subparsers(dest="alerts_command", required=True)

    listing = commands.add_parser("list", help="list alerts, newest first")
    listing.add_argument("--query", "-q", default=None,
                         help="field filters: status:new entity:ID severity:>=high source:S "
                              "class:C case:none|ID exercise:include|exclude|only|ID")
    listing.add_argument("--status", choices=ALERT_STATUSES)
    listing.add_argument("--entity", default=None)
    listing.add_argument("--limit", type=int, default=100)
    add_json(listing)
    listing.set_defaults(handler=run_list)

    show = commands.add_parser("show", help="one alert with observables, hits and raw record")
    show.add_argument("id", type=int)
    add_json(show)
    show.set_defaults(handler=run_show)

    groups = commands.add_parser("groups", help="similar alerts grouped for triage")
    groups.add_argument("--query", "-q", default=None,
                        help="field filters (default: status:new,acknowledged)")
    add_json(groups)
    groups.set_defaults(handler=run_groups)

    for name, helptext, handler in (("ack", "acknowledge alerts", run_ack),
                                    ("dismiss", "dismiss alerts with a reason", run_dismiss),
                                    ("reopen", "reopen dismissed alerts", run_reopen)):
        action = commands.add_parser(name, help=helptext)
        _selection_arguments(action)
        if name == "dismiss":
            action.add_argument("--reason", default="false-positive", choices=DISMISS_REASONS)
        add_json(action)
        action.set_defaults(handler=handler)

    promote = commands.add_parser("promote", help="put alerts in a new case, or in --case")
    _selection_arguments(promote)
    promote.add_argument("--case", default=None, help="an existing case (id or CASE-… number)")
    promote.add_argument("--title", default=None, help="title of the new case")
    add_json(promote)
    promote.set_defaults(handler=run_promote)


def _selection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ids", nargs="*", type=int, help="alert ids")
    parser.add_argument("--query", "-q", default=None, help="act on every alert matching")
    parser.add_argument("--group", default=None, help="act on every alert of this group")


def _selection(args: argparse.Namespace) -> AlertFilter:
    chosen = sum(bool(x) for x in (args.ids, args.query, args.group))
    if chosen != 1:
        raise InvalidInput("name the alerts by ids, by --query or by --group (exactly one)",
                           field="ids")
    if args.ids:
        return AlertFilter(ids=tuple(args.ids))
    if args.query:
        return parse_query(args.query)
    with services() as built, built.store.read() as conn:
        group = built.triage.group(conn, args.group)
    return AlertFilter(ids=tuple(group.alert_ids))


def run_list(args: argparse.Namespace) -> int:
    """Print the queue; a query with free text goes through the search index."""
    try:
        selection = parse_query(args.query)
    except InvalidInput:
        selection = None
    with services() as built:
        if selection is None:
            rows = _search(built, args)
        else:
            rows = built.alerts.list(status=args.status, entity_id=args.entity,
                                     limit=args.limit, selection=selection)
    if args.json:
        emit_json(rows)
        return 0
    table("Alerts", ("id", "severity", "entity", "title", "class", "count", "hits", "status"),
          [(r["id"], r["severity"], cell(r["entity_id"]), r["title"], r["classification"],
            r["count"], r["hits"], r["status"]) for r in rows])
    return 0


def _search(built: Services, args: argparse.Namespace) -> list[dict[str, Any]]:
    from cases.search.service import search_backend

    terms = [args.query]
    if args.status:
        terms.append(f"status:{args.status}")
    if args.entity:
        terms.append(f"entity:{args.entity}")
    found = search_backend(built.store, built.settings).search(" ".join(terms), None,
                                                              limit=args.limit)
    return found["alerts"]


def run_show(args: argparse.Namespace) -> int:
    """Print one alert."""
    with services() as built:
        document = built.alerts.get(args.id)
    if args.json:
        emit_json(document)
        return 0
    alert = document["alert"]
    rows = [(k, cell(document[k])) for k in ("id", "title", "severity", "entity_id", "status",
                                             "classification", "count", "case_id")]
    rows += [("observable", f"{o['type']}: {cell(o['value'])}") for o in alert["observables"]]
    rows += [("hit", cell(h.get("indicator") or h.get("rule"))) for h in alert["hits"]]
    rows.append(("raw", cell((document["raw"] or "")[:500])))
    table(f"Alert {args.id}", ("field", "value"), rows)
    return 0


def run_groups(args: argparse.Namespace) -> int:
    """Print the groups of the open queue (or of --query)."""
    selection = parse_query(args.query, AlertFilter(statuses=OPEN_STATUSES))
    with services() as built:
        groups = built.triage.groups(selection)
    if args.json:
        emit_json([g.as_dict() for g in groups])
        return 0
    table("Alert groups", ("key", "severity", "entity", "title", "observable", "alerts",
                           "events", "last seen"),
          [(g.key, g.severity, cell(g.entity_id), g.title, cell(g.observable),
            len(g.alert_ids), g.events, g.last_seen.isoformat()) for g in groups])
    return 0


def _act(args: argparse.Namespace, status: str, reason: str | None) -> int:
    selection = _selection(args)
    with services() as built:
        changed = built.triage.apply(selection, status, CLI_ACTOR, reason=reason)
    if args.json:
        emit_json({"changed": len(changed), "status": status, "ids": changed})
    else:
        info(f"{status}: {len(changed)} alert(s)")
    return 0


def run_ack(args: argparse.Namespace) -> int:
    """Acknowledge alerts."""
    return _act(args, "acknowledged", None)


def run_dismiss(args: argparse.Namespace) -> int:
    """Dismiss alerts with a reason."""
    return _act(args, "dismissed", args.reason)


def run_reopen(args: argparse.Namespace) -> int:
    """Reopen dismissed alerts."""
    return _act(args, "new", None)


def run_promote(args: argparse.Namespace) -> int:
    """Promote alerts to a new case, or merge them into an existing one."""
    selection = _selection(args)
    with services() as built:
        result = built.cases.promote(selection, CLI_ACTOR, case_ref=args.case, title=args.title)
    if args.json:
        emit_json(result)
    else:
        info(f"{len(result['alert_ids'])} alert(s) in case {result['number']}")
    return 0
