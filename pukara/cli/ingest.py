"""``pukara ingest PATH...``: files and folders through the live pipeline.

Ends with a summary ``{accepted, duplicates, rejected, errors: [{source, line, error}]}``
(``--json`` prints exactly that). A file that cannot be read or whose format cannot be told
is reported as one error and the other files go on; the exit code is then 1.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from collectors.sources.files import FileSource, expand
from pukara.cli.common import services
from pukara.cli.output import emit_json, info, progress, table
from pukara.core import plugins
from pukara.core.errors import InvalidInput, PukaraError
from pukara.core.schema import IngestError, IngestResult, utcnow
from pukara.workers import NewCaseWatcher


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``ingest``."""
    parser = subparsers.add_parser("ingest", help="ingest files or folders")
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.add_argument("--format", "-f", default="auto",
                        help=f"auto or one of: {', '.join(plugins.names(plugins.PARSERS))}")
    parser.add_argument("--entity", default=None, help="the entity that sent these files")
    parser.add_argument("--mapping", type=Path, default=None, metavar="FILE",
                        help="csv/json formats: a YAML column mapping file")
    parser.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN",
                        help="csv/json formats: map one field, e.g. source.ip=ip (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Ingest every file under the paths; print the summary."""
    fmt = None if args.format == "auto" else args.format
    if fmt is not None:
        plugins.load(plugins.PARSERS, fmt)
    mapping = _mapping(args)
    total = IngestResult()
    started_at = utcnow()
    failed_files = 0
    files = list(expand(args.paths))
    with services() as built:
        if args.entity:
            built.identity.entity(args.entity)
        source = FileSource()
        with progress() as bar:
            task = bar.add_task("ingest", total=len(files))
            for path in files:
                try:
                    with source.open_report(path, entity_id=args.entity, fmt=fmt) as report:
                        report.metadata.update(mapping)
                        total.add(built.pipeline.ingest(report))
                except PukaraError as exc:
                    failed_files += 1
                    total.rejected += 1
                    total.errors.append(IngestError(source=str(path), error=exc.message))
                bar.advance(task)
        NewCaseWatcher(built, since=started_at).run_pass()
    _print(total, args.json)
    return 1 if failed_files else 0


def _mapping(args: argparse.Namespace) -> dict[str, object]:
    """Generic-format column mapping from --mapping FILE and --map FIELD=COLUMN."""
    found: dict[str, object] = {}
    if args.mapping is not None:
        found["mapping_file"] = str(args.mapping)
    pairs = {}
    for item in args.map:
        target, sep, column = item.partition("=")
        if not sep or not target or not column:
            raise InvalidInput(f"--map {item!r}: give FIELD=COLUMN, e.g. source.ip=ip")
        pairs[target.strip()] = column.strip()
    if pairs:
        found["mapping"] = pairs
    return found


def _print(total: IngestResult, as_json: bool) -> None:
    if as_json:
        emit_json(total.model_dump(mode="json"))
        return
    info(f"accepted {total.accepted}, duplicates {total.duplicates}, rejected {total.rejected}")
    if total.errors:
        table("First errors", ("source", "line", "error"),
              [(e.source, e.line if e.line is not None else e.record, e.error)
               for e in total.errors[:20]])
