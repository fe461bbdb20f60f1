"""The list-and-detail layout the alert, group, case and entity screens share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.app import ComposeResult
from textual.containers import Container, VerticalScroll
from textual.widgets import DataTable, Static

Columns = Sequence[tuple[str, int]]


def list_table() -> DataTable[Any]:
    """The screen's row table (``#table``)."""
    return DataTable(id="table", cursor_type="row", zebra_stripes=True)


def table_and_detail() -> ComposeResult:
    """``#body``: the row table beside a scrolling ``#detail-text`` pane."""
    with Container(id="body"):
        yield list_table()
        with VerticalScroll(id="detail"):
            yield Static("", id="detail-text")


def set_columns(table: DataTable[Any], columns: Columns) -> None:
    """Add fixed-width columns (keyed by name) and focus the table."""
    for name, width in columns:
        table.add_column(name, key=name, width=width)
    table.focus()
