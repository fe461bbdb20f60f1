"""``pukara init``: create PUKARA_HOME, its private folders and the database."""

from __future__ import annotations

import argparse

from pukara.cli.common import add_json
from pukara.cli.output import emit_json, info
from pukara.core.config import load_settings
from pukara.wiring import build_services


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``init``."""
    parser = subparsers.add_parser("init", help="create the home folder and the database")
    add_json(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Create or migrate the store of ``PUKARA_HOME``."""
    settings = load_settings()
    services = build_services(settings)
    try:
        for folder in (settings.evidence_dir, settings.cache_dir):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        config = settings.home / "pukara.toml"
        if not config.exists():
            config.write_text("# Pukara configuration; PUKARA_* variables override it.\n")
            config.chmod(0o600)
    finally:
        services.close()
    document = {"home": str(settings.home), "database": _masked(settings.db_url)}
    if args.json:
        emit_json(document)
    else:
        info(f"initialised {document['home']} ({document['database']})")
    return 0


def _masked(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
