"""``pukara scan PATH... [--rules DIR] [--engine yara|yara-x] [--json]``: YARA-scan files.

JSON: ``[{"path", "matches": [{"rule", "namespace", "tags", "meta", "strings"}]}]``; a file that
could not be scanned carries ``"error"`` (``"timeout"``, ``"too large: …"``, ``"not found"``).
Rule files that do not compile are reported on stderr (``file:line: message``) and the scan
goes on with the others.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from enrichment.yara.compiler import RuleError, default_sources, is_compiled_rules
from enrichment.yara.engines import ENGINES, open_scanner
from enrichment.yara.scanner import ScanLimits, Scanner, ScanResult
from pukara.cli.common import add_json
from pukara.cli.output import emit_json, info, progress, safe_text, table
from pukara.core.config import load_settings
from pukara.core.errors import InvalidInput


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``scan``."""
    parser = subparsers.add_parser("scan", help="scan files and folders with YARA rules")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="file or folder (recursive)")
    parser.add_argument(
        "--rules",
        action="append",
        type=Path,
        metavar="DIR",
        help="rule folder or .yar file (repeatable); default: shipped rules + yara_rule_dirs",
    )
    parser.add_argument("--engine", choices=ENGINES, default="yara", help="default: yara")
    parser.add_argument("--timeout", type=positive, default=60, help="seconds per file")
    parser.add_argument("--processes", type=positive, default=2, help="worker processes")
    add_json(parser)
    parser.set_defaults(handler=run_scan)


def positive(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def expand(paths: Sequence[str]) -> tuple[list[str], list[str]]:
    """Files under ``paths`` (folders walked without following links) and the missing ones."""
    found: list[str] = []
    missing: list[str] = []
    for given in paths:
        if os.path.isfile(given):  # noqa: PTH113 - plain strings in, plain strings out
            found.append(given)
        elif os.path.isdir(given):  # noqa: PTH112
            for folder, dirs, files in os.walk(given):
                dirs.sort()
                found.extend(os.path.join(folder, name) for name in sorted(files))  # noqa: PTH118
        else:
            missing.append(given)
    return found, missing


def _scanner(args: argparse.Namespace) -> tuple[Scanner, tuple[RuleError, ...]]:
    """Compile (or reuse from the cache) the chosen rules for the chosen engine."""
    settings = load_settings()
    for given in args.rules or ():
        if is_compiled_rules(given):
            raise InvalidInput(
                f"{given}: compiled rules are refused; pass rule source (.yar)", field="rules"
            )
    if args.rules:
        sources = default_sources(args.rules, national=False)
    else:
        sources = default_sources(settings.yara_rule_dirs)
    scanner, errors, unsupported = open_scanner(
        sources, settings.cache_dir, engine=args.engine, limits=ScanLimits(timeout=args.timeout)
    )
    for refused in unsupported:
        info(safe_text(f"{refused} (yara-x refused it; scanned with yara-python)"))
    return scanner, errors


def _scan(scanner: Scanner, files: list[str], processes: int) -> Iterator[ScanResult]:
    with progress() as bar:
        task = bar.add_task("scanning", total=len(files))
        for result in scanner.scan_paths(files, processes=processes):
            bar.advance(task)
            yield result


def run_scan(args: argparse.Namespace) -> int:
    """Scan; print results (JSON or a table); non-zero when a path does not exist."""
    files, missing = expand(args.paths)
    scanner, errors = _scanner(args)
    for error in errors:
        info(safe_text(str(error)))
    order = {path: index for index, path in enumerate(files)}
    results = sorted(_scan(scanner, files, args.processes), key=lambda r: order[r.path])
    results.extend(ScanResult(path, error="not found") for path in missing)
    for path in missing:
        info(safe_text(f"{path}: no such file or folder"))
    if args.json:
        emit_json([result.to_dict() for result in results])
    else:
        rows = [
            (r.path, m.namespace, m.rule, " ".join(m.tags)) for r in results for m in r.matches
        ]
        table("YARA matches", ("path", "namespace", "rule", "tags"), rows)
        failed = [(r.path, r.error) for r in results if r.error]
        if failed:
            table("Not scanned", ("path", "error"), failed)
    return 1 if missing else 0
