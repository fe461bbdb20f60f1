"""Start-up loads only the command being run, and the static command table cannot drift.

``pukara.cli.COMMANDS`` lists every command's module(s) and help line so ``pukara --help``
imports none of them; these tests register every module for real and compare.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pukara.cli import COMMANDS, GROUPS, build_parser, command_of

#: heavy modules (each ≥ ~60 ms to import, measured with -X importtime) that only other
#: commands need, plus the command modules themselves
NOT_FOR_SCAN = ("pukara.cli.tui", "pukara.cli.exercise", "pukara.cli.case", "pukara.cli.export",
                "pukara.cli.serve", "pukara.wiring", "sqlalchemy", "pymisp", "stix2", "uvicorn")


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The sub-command parsers of a parser, in registration order."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def helps(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str]]:
    """(prog, help text) of a parser and of every parser below it."""
    yield parser.prog, parser.format_help()
    for sub in subcommands(parser).values():
        yield from helps(sub)


def listing(parser: argparse.ArgumentParser) -> list[tuple[str, str | None]]:
    """The top-level (name, help) lines ``pukara --help`` prints."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return [(choice.dest, choice.help) for choice in action._choices_actions]
    return []


@pytest.fixture(autouse=True)
def fixed_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """Help is wrapped to $COLUMNS: make it the same for every parser compared."""
    monkeypatch.setenv("COLUMNS", "100")


def test_table_lists_what_the_modules_register() -> None:
    full = build_parser()
    assert listing(full) == [(name, entry.help) for name, entry in COMMANDS.items()]
    assert sorted(GROUPS) == sorted(
        path.stem for path in Path(importlib.import_module("pukara.cli").__path__[0]).glob("*.py")
        if path.stem not in {"__init__", "common", "output"})


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_entry_names_the_modules_that_build_it(name: str) -> None:
    entry = COMMANDS[name]
    parser = argparse.ArgumentParser(prog="pukara")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in entry.modules:
        importlib.import_module(f"pukara.cli.{group}").register(sub)
    built = [n for n, e in COMMANDS.items() if e.modules[0] == entry.modules[0]]
    assert listing(parser) == [(n, COMMANDS[n].help) for n in built]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_one_command_parser_reads_as_the_full_one(name: str) -> None:
    full = build_parser()
    lazy = build_parser([name])
    assert lazy.format_help() == full.format_help()
    assert list(helps(subcommands(lazy)[name])) == list(helps(subcommands(full)[name]))


def test_listing_without_a_command_reads_as_the_full_one() -> None:
    assert build_parser([]).format_help() == build_parser().format_help()
    assert build_parser(["--help"]).format_help() == build_parser().format_help()


@pytest.mark.parametrize(("argv", "command"), [
    ([], None), (["--help"], None), (["scan", "--json", "x"], "scan"),
    (["-h", "case", "list"], "case"), (["restore", "DIR"], "restore"), (["nope"], "nope"),
])
def test_command_of(argv: list[str], command: str | None) -> None:
    assert command_of(argv) == command


#: run main(argv) in a fresh interpreter, then write the modules it loaded to a file
PROBE = """
import json, sys
from pathlib import Path
from pukara.cli import main
try:
    code = main(sys.argv[2:])
except SystemExit as exc:
    code = exc.code
Path(sys.argv[1]).write_text(json.dumps(sorted(sys.modules)))
sys.exit(code)
"""


def run_fresh(tmp_path: Path, *argv: str) -> tuple[int, str, set[str]]:
    """Exit code, stdout and loaded modules of ``pukara ARGV`` in a fresh interpreter."""
    report = tmp_path / "modules.json"
    env = dict(os.environ, PUKARA_HOME=str(tmp_path / "home"), COLUMNS="100")
    done = subprocess.run([sys.executable, "-c", PROBE, str(report), *argv],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    return done.returncode, done.stdout, set(json.loads(report.read_text()))


def test_scan_help_loads_only_scan(tmp_path: Path) -> None:
    code, out, modules = run_fresh(tmp_path, "scan", "--help")
    assert code == 0 and out.startswith("usage: pukara scan")
    assert "pukara.cli.scan" in modules
    assert modules.isdisjoint(NOT_FOR_SCAN), sorted(modules & set(NOT_FOR_SCAN))


def test_scan_run_loads_only_scan(tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "note.txt").write_text("nothing to see here\n")
    code, out, modules = run_fresh(tmp_path, "scan", "--json", str(folder))
    assert code == 0
    assert json.loads(out) == [{"path": str(folder / "note.txt"), "matches": []}]
    assert modules.isdisjoint(NOT_FOR_SCAN), sorted(modules & set(NOT_FOR_SCAN))


def test_listing_loads_no_command(tmp_path: Path) -> None:
    code, out, modules = run_fresh(tmp_path, "--help")
    assert code == 0 and out == build_parser().format_help()
    assert not {m for m in modules if m.startswith(("pukara.cli.", "rich", "pydantic"))}


def test_console_script_lists_every_command() -> None:
    script = Path(sys.executable).parent / "pukara"
    if not script.exists():
        pytest.skip(f"console script not installed beside {sys.executable}")
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, COLUMNS="100"), check=True)
    assert done.stdout == build_parser().format_help()
