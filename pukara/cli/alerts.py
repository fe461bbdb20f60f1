"""``pukara alerts``: list, show, acknowledge and dismiss stored alerts."""

from __future__ import annotations

import argparse

from cases.services import audit
from pukara.cli.common import add_json, cell, services
from pukara.cli.output import emit_json, info, table


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``alerts list|show|ack|dismiss``."""
    parser = subparsers.add_parser("alerts", help="the alert queue")
    commands = parser.add_subparsers(dest="alerts_command", required=True)

    listing = commands.add_parser("list", help="list alerts, newest first")
    listing.add_argument("--query", "-q", default=None, help="filter (see `pukara search`)")
    listing.add_argument("--status", choices=("new", "acknowledged", "promoted", "dismissed",
                                              "merged"))
    listing.add_argument("--entity", default=None)
    listing.add_argument("--limit", type=int, default=100)
    add_json(listing)
    listing.set_defaults(handler=run_list)

    show = commands.add_parser("show", help="one alert with observables, hits and raw record")
    show.add_argument("id", type=int)
    add_json(show)
    show.set_defaults(handler=run_show)

    ack = commands.add_parser("ack", help="acknowledge alerts")
    ack.add_argument("ids", nargs="+", type=int)
    add_json(ack)
    ack.set_defaults(handler=run_ack)

    dismiss = commands.add_parser("dismiss", help="dismiss alerts with a reason")
    dismiss.add_argument("ids", nargs="+", type=int)
    dismiss.add_argument("--reason", default="false-positive",
                         choices=("false-positive", "duplicate", "out-of-scope", "other"))
    add_json(dismiss)
    dismiss.set_defaults(handler=run_dismiss)


def run_list(args: argparse.Namespace) -> int:
    """Print the queue."""
    with services() as built:
        rows = built.alerts.list(status=args.status, entity_id=args.entity, limit=args.limit)
    if args.json:
        emit_json(rows)
        return 0
    table("Alerts", ("id", "severity", "entity", "title", "class", "count", "hits", "status"),
          [(r["id"], r["severity"], cell(r["entity_id"]), r["title"], r["classification"],
            r["count"], r["hits"], r["status"]) for r in rows])
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Print one alert."""
    with services() as built:
        document = built.alerts.get(args.id)
    if args.json:
        emit_json(document)
        return 0
    alert = document["alert"]
    rows = [(k, cell(document[k])) for k in ("id", "title", "severity", "entity_id", "status",
                                             "classification", "count")]
    rows += [("observable", f"{o['type']}: {cell(o['value'])}") for o in alert["observables"]]
    rows += [("hit", cell(h.get("indicator") or h.get("rule"))) for h in alert["hits"]]
    rows.append(("raw", cell((document["raw"] or "")[:500])))
    table(f"Alert {args.id}", ("field", "value"), rows)
    return 0


def _set(args: argparse.Namespace, status: str, reason: str | None) -> int:
    with services() as built:
        count = built.alerts.set_status(args.ids, status, audit.Actor("cli"), reason=reason)
    if args.json:
        emit_json({"changed": count, "status": status})
    else:
        info(f"{status} {count} alert(s)")
    return 0


def run_ack(args: argparse.Namespace) -> int:
    """Acknowledge alerts."""
    return _set(args, "acknowledged", None)


def run_dismiss(args: argparse.Namespace) -> int:
    """Dismiss alerts with a reason."""
    return _set(args, "dismissed", args.reason)
