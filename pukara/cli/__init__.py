"""The ``pukara`` command: one module per command group, each with ``register(subparsers)``.

Every listing or report command accepts ``--json`` and then prints exactly one JSON
document on stdout; errors go to stderr with a non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from pukara.cli.output import fail, safe_text
from pukara.core.errors import PukaraError

#: command-group modules under pukara.cli, each exposing register(subparsers)
GROUPS = (
    "init",
    "entity",
    "user",
    "serve",
    "ingest",
    "watch",
    "alerts",
    "case",
    "export",
    "search",
    "advisory",
    "intel",
    "scan",
    "audit",
    "backup",
    "playbook",
    "demo",
    "exercise",
    "tui",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every command group registered."""
    parser = argparse.ArgumentParser(prog="pukara", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        try:
            module = importlib.import_module(f"pukara.cli.{group}")
        except ModuleNotFoundError as exc:
            if exc.name != f"pukara.cli.{group}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except PukaraError as exc:
        return fail(exc)
    except BrokenPipeError:
        sys.stderr.close()
        return 141
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("PUKARA_DEBUG"):
            raise
        print(f"internal error: {type(exc).__name__}: {safe_text(exc)} "
              "(set PUKARA_DEBUG=1 for the traceback)", file=sys.stderr)
        return 70
    return code


if __name__ == "__main__":
    sys.exit(main())
