"""The ``pukara`` command: one module per command group, each with ``register(subparsers)``.

Every listing or report command accepts ``--json`` and then prints exactly one JSON
document on stdout; errors go to stderr with a non-zero exit.

Start-up imports only the module of the command being run: ``COMMANDS`` names every
command's module(s) and one-line help, so ``pukara --help`` lists every command without
importing any of them (tests/cli/test_lazy_commands.py keeps the table equal to what the
modules register).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NamedTuple

from pukara.core.errors import PukaraError


class Command(NamedTuple):
    """One top-level command: the modules whose ``register`` builds it, and its help line."""

    modules: tuple[str, ...]
    help: str


#: every top-level command in listing order; a module registering several commands
#: (``backup``: backup and restore) or adding to another's (``export``: case export)
#: is named under each command it builds
COMMANDS: dict[str, Command] = {
    "init": Command(("init",), "create the home folder and the database"),
    "entity": Command(("entity",), "the constituency registry"),
    "user": Command(("user",), "accounts of the national center"),
    "serve": Command(("serve",), "run the entity HTTP API"),
    "ingest": Command(("ingest",), "ingest files or folders"),
    "watch": Command(("watch",), "ingest a spool folder or a Maildir as it fills"),
    "alerts": Command(("alerts",), "the alert queue"),
    "case": Command(("case", "export"), "national incidents (cases)"),
    "search": Command(("search",), "search alerts and cases"),
    "advisory": Command(("advisory",), "advisories for the constituency"),
    "intel": Command(("intel",), "threat intelligence: indicators, warninglists"),
    "scan": Command(("scan",), "scan files and folders with YARA rules"),
    "audit": Command(("audit",), "the tamper-evident audit log"),
    "backup": Command(("backup",), "back up the database and evidence store"),
    "restore": Command(("backup",), "restore a backup into an empty home, then verify every "
                                    "evidence file and the audit chain"),
    "playbook": Command(("playbook",), "incident playbooks on cases"),
    "demo": Command(("demo",), "run the platform on a demo home"),
    "exercise": Command(("exercise",), "simulation exercises"),
    "tui": Command(("tui",), "open the analysts' terminal UI"),
}

#: command-group modules under pukara.cli, each exposing register(subparsers)
GROUPS = tuple(dict.fromkeys(module for command in COMMANDS.values()
                             for module in command.modules))


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser: every command group, or, given the arguments it will parse, only
    their command's modules.

    The other commands are then bare entries carrying their help line, so ``--help`` and
    argparse's errors read the same while only the command being run is imported.
    """
    parser = argparse.ArgumentParser(prog="pukara", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    if argv is None:
        wanted = set(GROUPS)
    else:
        command = COMMANDS.get(command_of(argv) or "")
        wanted = set(command.modules) if command else set()
    registered: set[str] = set()
    for name, entry in COMMANDS.items():
        if entry.modules[0] not in wanted:
            subparsers.add_parser(name, help=entry.help)
            continue
        for group in entry.modules:
            if group not in registered:
                importlib.import_module(f"pukara.cli.{group}").register(subparsers)
                registered.add(group)
    return parser


def command_of(argv: Sequence[str]) -> str | None:
    """The command argparse will pick: the first argument that is not an option."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(arguments).parse_args(arguments)
    from pukara.cli.output import fail, safe_text  # rich: not needed for --help or usage errors

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
