"""``pukara case export ID --format misp|stix|markdown [--output F] [--push] [--to ENTITY]``.

Registered under the ``case`` command by finding its sub-command parser (``case.py`` keeps
its own commands; sharing lives here). Without ``--output`` the document goes to stdout;
``--push`` (MISP only) sends the event to the configured MISP server. A refusal by the TLP
policy is an error on stderr that says why, with a non-zero exit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cases.services import audit
from cases.sharing.case_data import audited_refusal, load_case, record_share
from cases.sharing.markdown_report import export_report
from cases.sharing.misp_export import build_event, misp_client, push
from cases.sharing.stix_export import export_bundle
from pukara.cli.common import services
from pukara.cli.output import emit_json, info
from pukara.wiring import Services

if TYPE_CHECKING:
    Sub = argparse._SubParsersAction[argparse.ArgumentParser]

CLI_ACTOR = audit.Actor("cli")
FORMATS = ("misp", "stix", "markdown")


def _case_commands(subparsers: Sub) -> Sub | None:
    case = subparsers.choices.get("case")
    if case is None:
        return None
    for action in case._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def register(subparsers: Sub) -> None:
    """Add ``export`` to the ``case`` command (nothing when there is no ``case`` command)."""
    commands = _case_commands(subparsers)
    if commands is None:
        return
    parser = commands.add_parser("export", help="share a case: MISP event, STIX 2.1, Markdown")
    parser.add_argument("id", help="case id or tracking number")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--output", "-o", default=None, help="write to this file")
    parser.add_argument("--push", action="store_true", help="push the MISP event to the server")
    parser.add_argument("--to", dest="recipient", default=None,
                        help="the entity the STIX or Markdown export is for")
    parser.add_argument("--json", action="store_true", help="print one JSON summary")
    parser.set_defaults(handler=run_export)


def _document(built: Services, args: argparse.Namespace) -> str:
    export = load_case(built.store, args.id)
    if args.format == "misp":
        if args.push:
            summary = push(built.store, export, misp_client(built.settings), CLI_ACTOR)
            info(f"pushed MISP event {summary['event_uuid']} "
                 f"({summary['attributes']} attributes, {summary['excluded']} withheld)")
        with audited_refusal(built.store, CLI_ACTOR, export, "misp-file"):
            event = build_event(export)
        if not args.push:
            record_share(built.store, CLI_ACTOR, export, "misp-file",
                         details={"attributes": len(event.event.attributes),
                                  "excluded": len(event.excluded)})
        return str(event.event.to_json(indent=2))
    if args.format == "stix":
        bundle = export_bundle(built.store, export, built.settings.center_name, CLI_ACTOR,
                               args.recipient)
        return str(bundle.bundle.serialize(pretty=True))
    return export_report(built.store, export, built.settings.regime(), CLI_ACTOR,
                         args.recipient)


def run_export(args: argparse.Namespace) -> int:
    """Export one case; the document goes to --output or stdout."""
    with services() as built:
        text = _document(built, args)
    if args.output:
        path = Path(args.output)
        path.write_text(text + "\n", encoding="utf-8")
        if args.json:
            emit_json({"case": args.id, "format": args.format, "output": str(path),
                       "bytes": path.stat().st_size, "pushed": bool(args.push)})
        else:
            info(f"wrote {path}")
        return 0
    sys.stdout.write(text + "\n")
    return 0
