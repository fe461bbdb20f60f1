"""``pukara entity``: the constituency registry and entity tokens."""

from __future__ import annotations

import argparse
from pathlib import Path

from cases.services.entity_file import entity_from_dict, load_entities_file
from pukara.cli.common import add_json, cell, services
from pukara.cli.output import emit_json, info, table
from pukara.core.schema import Contact


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``entity add|list|show|import|token|revoke``."""
    parser = subparsers.add_parser("entity", help="the constituency registry")
    commands = parser.add_subparsers(dest="entity_command", required=True)

    add = commands.add_parser("add", help="register an entity")
    add.add_argument("id")
    add.add_argument("--name", required=True)
    add.add_argument("--sector", required=True)
    add.add_argument("--criticality", type=int, default=2, choices=(1, 2, 3))
    add.add_argument("--language", default="es", choices=("es", "en"))
    add.add_argument("--cidr", action="append", default=[])
    add.add_argument("--asn", action="append", default=[], type=int)
    add.add_argument("--domain", action="append", default=[])
    add.add_argument("--email", action="append", default=[])
    add_json(add)
    add.set_defaults(handler=run_add)

    listing = commands.add_parser("list", help="list entities")
    add_json(listing)
    listing.set_defaults(handler=run_list)

    show = commands.add_parser("show", help="one entity")
    show.add_argument("id")
    add_json(show)
    show.set_defaults(handler=run_show)

    load = commands.add_parser("import", help="add or replace entities from a YAML file")
    load.add_argument("file", type=Path)
    add_json(load)
    load.set_defaults(handler=run_import)

    token = commands.add_parser("token", help="issue a new API token (printed once)")
    token.add_argument("id")
    token.set_defaults(handler=run_token)

    revoke = commands.add_parser("revoke", help="revoke every token of an entity")
    revoke.add_argument("id")
    add_json(revoke)
    revoke.set_defaults(handler=run_revoke)


def run_add(args: argparse.Namespace) -> int:
    """Register one entity from flags."""
    entity = entity_from_dict({
        "id": args.id, "name": args.name, "sector": args.sector,
        "criticality": args.criticality, "language": args.language,
        "cidrs": args.cidr, "asns": args.asn, "domains": args.domain,
        "contacts": [Contact(email=e).model_dump() for e in args.email],
    }, "entity")
    with services() as built:
        built.identity.add_entity(entity)
    if args.json:
        emit_json(entity.model_dump(mode="json"))
    else:
        info(f"registered entity {entity.id}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    """List the registry."""
    with services() as built:
        items = built.identity.entities()
    if args.json:
        emit_json([e.model_dump(mode="json") for e in items])
        return 0
    table("Entities", ("id", "name", "sector", "tier", "cidrs", "domains"),
          [(e.id, e.name, e.sector, e.criticality, len(e.cidrs), cell(", ".join(e.domains)))
           for e in items])
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Show one entity."""
    with services() as built:
        entity = built.identity.entity(args.id)
    if args.json:
        emit_json(entity.model_dump(mode="json"))
        return 0
    table(f"Entity {entity.id}", ("field", "value"),
          [(k, cell(v)) for k, v in entity.model_dump(mode="json").items()])
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Add or replace entities from YAML; all or nothing."""
    items = load_entities_file(args.file)
    with services() as built:
        count = built.identity.upsert_entities(items)
    if args.json:
        emit_json({"imported": count})
    else:
        info(f"imported {count} entities from {args.file}")
    return 0


def run_token(args: argparse.Namespace) -> int:
    """Issue a token; only the token on the last line of stdout."""
    with services() as built:
        token = built.identity.issue_entity_token(args.id)
    info(f"new token for entity {args.id} (shown once, store it now):")
    print(token)
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    """Revoke every live token of an entity."""
    with services() as built:
        built.identity.entity(args.id)
        count = built.identity.revoke(entity_id=args.id)
    if args.json:
        emit_json({"entity": args.id, "revoked": count})
    else:
        info(f"revoked {count} token(s) of {args.id}")
    return 0
