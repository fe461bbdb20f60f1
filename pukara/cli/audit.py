"""``pukara audit verify``: check the audit log's hash chain."""

from __future__ import annotations

import argparse

from cases.services import audit
from pukara.cli.common import add_json, services
from pukara.cli.output import emit_json, info


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``audit verify``."""
    parser = subparsers.add_parser("audit", help="the tamper-evident audit log")
    commands = parser.add_subparsers(dest="audit_command", required=True)
    verify = commands.add_parser("verify", help="verify the hash chain; non-zero if broken")
    add_json(verify)
    verify.set_defaults(handler=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    """Verify the chain; AuditChainBroken propagates as a non-zero exit naming the entry."""
    with services() as built, built.store.read() as conn:
        count = audit.verify(conn)
    if args.json:
        emit_json({"ok": True, "entries": count})
    else:
        info(f"audit log verified: {count} entries")
    return 0
