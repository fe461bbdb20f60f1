"""``pukara user``: analyst, coordinator and admin accounts of the center."""

from __future__ import annotations

import argparse

from cases.services.identity import Role
from pukara.cli.common import add_json, services
from pukara.cli.output import emit_json, info, table


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``user add|token|list``."""
    parser = subparsers.add_parser("user", help="accounts of the national center")
    commands = parser.add_subparsers(dest="user_command", required=True)
    add = commands.add_parser("add", help="create an account")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=("analyst", "coordinator", "admin"))
    add.set_defaults(handler=run_add)
    token = commands.add_parser("token", help="issue a new token (printed once)")
    token.add_argument("name")
    token.set_defaults(handler=run_token)
    listing = commands.add_parser("list", help="list accounts")
    add_json(listing)
    listing.set_defaults(handler=run_list)


def run_add(args: argparse.Namespace) -> int:
    """Create an account."""
    with services() as built:
        built.identity.add_user(args.name, Role(args.role))
    info(f"created {args.role} {args.name}")
    return 0


def run_token(args: argparse.Namespace) -> int:
    """Issue a token; only the token on the last line of stdout."""
    with services() as built:
        token = built.identity.issue_user_token(args.name)
    info(f"new token for {args.name} (shown once, store it now):")
    print(token)
    return 0


def run_list(args: argparse.Namespace) -> int:
    """List accounts (never tokens)."""
    with services() as built:
        rows = built.identity.users()
    if args.json:
        emit_json(rows)
        return 0
    table("Users", ("name", "role", "disabled", "created"),
          [(r["name"], r["role"], r["disabled"], r["created_at"]) for r in rows])
    return 0
