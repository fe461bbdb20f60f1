"""``pukara backup DIR`` / ``pukara restore DIR``: the home as one unit, with a restore check."""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson

from cases.services import audit
from cases.services.backup import backup, restore, verify
from pukara.cli.common import add_json, services
from pukara.cli.output import emit_json, info
from pukara.core.config import load_settings
from pukara.core.errors import StoreError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``backup`` and ``restore``."""
    make = subparsers.add_parser("backup", help="back up the database and evidence store")
    make.add_argument("target", type=Path, metavar="DIR")
    add_json(make)
    make.set_defaults(handler=run_backup)
    back = subparsers.add_parser("restore", help="restore a backup into an empty home, then "
                                 "verify every evidence file and the audit chain")
    back.add_argument("source", type=Path, metavar="DIR")
    add_json(back)
    back.set_defaults(handler=run_restore)


def run_backup(args: argparse.Namespace) -> int:
    """Write the backup."""
    with services() as built:
        manifest = backup(built.store, built.settings.evidence_dir, args.target)
    if args.json:
        emit_json(manifest)
    else:
        info(f"backed up to {args.target}: {manifest['counts']}")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    """Restore, then check it: counts, evidence hashes, audit chain."""
    settings = load_settings()
    restore(args.source, settings.home)
    manifest = orjson.loads((args.source / "manifest.json").read_bytes())
    with services() as built:
        problems = verify(built.store, built.settings.evidence_dir, manifest)
        with built.store.read() as conn:
            entries = audit.verify(conn)
    if problems:
        raise StoreError("restore incomplete: " + "; ".join(problems[:20]))
    document = {"restored": str(settings.home), "counts": manifest["counts"],
                "audit_entries": entries, "problems": []}
    if args.json:
        emit_json(document)
    else:
        info(f"restored into {settings.home}: {manifest['counts']}, audit chain verified")
    return 0
