"""Printing for the CLI: one JSON document with --json, a rich table otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.table import Table

from pukara.core.errors import ConfigError, PukaraError

_console = Console(highlight=False)
_err = Console(stderr=True, highlight=False)


def emit_json(document: Any) -> None:
    """Print exactly one JSON document on stdout."""
    sys.stdout.buffer.write(
        orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str)
    )
    sys.stdout.buffer.write(b"\n")
    sys.stdout.flush()


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print a table; every cell is escaped so untrusted text shows literally."""
    out = Table(title=title)
    for column in columns:
        out.add_column(column)
    for row in rows:
        out.add_row(*(escape(safe_text(cell)) for cell in row))
    _console.print(out)


def safe_text(value: Any) -> str:
    """Text with control characters shown as visible escapes (SECURITY L2)."""
    text = "" if value is None else str(value)
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def info(message: str) -> None:
    """A human message on stderr (keeps stdout clean for --json)."""
    _err.print(escape(message), soft_wrap=True)


def fail(exc: PukaraError) -> int:
    """Report an error on stderr; configuration errors exit 2, others 1."""
    _err.print(f"[bold red]error:[/] {escape(safe_text(exc.message))}", soft_wrap=True)
    return 2 if isinstance(exc, ConfigError) else 1


class _ThreadlessProgress(Progress):
    """Redrawn on each advance instead of by a refresh thread: commands that fork workers
    (bulk ingest, YARA scans) fork only from a single-threaded process."""

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        """Advance the task and redraw."""
        super().advance(task_id, advance)
        self.refresh()


def progress() -> Progress:
    """A rich progress bar on stderr when it is a terminal; silent otherwise. It runs no
    thread of its own (see :class:`_ThreadlessProgress`)."""
    return _ThreadlessProgress(console=_err, disable=not _err.is_terminal, transient=True,
                               auto_refresh=False)
