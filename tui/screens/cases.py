"""Cases: the list with search-syntax filters, sort and paging; enter opens a case."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Header, Input, Static

from cases.services.paging import CASE_SORTS
from tui.client.base import CaseQuery, Page
from tui.screens.base import PukaraScreen
from tui.screens.case_detail import CaseDetailScreen
from tui.widgets.colours import severity, status, tlp
from tui.widgets.layout import list_table, set_columns
from tui.widgets.safe import literal

PAGE_SIZE = 100
COLUMNS = (("number", 16), ("sev", 8), ("TLP", 7), ("title", 36), ("status", 11),
           ("alerts", 6), ("entities", 20), ("assignee", 12))


def case_cells(row: dict[str, Any]) -> tuple[Any, ...]:
    """Table cells of one case."""
    return (row["number"], severity(row["severity"]), tlp(row["tlp"], prefix=False),
            literal(row["title"], limit=36), status(row["status"]), str(row.get("alerts", 0)),
            literal(", ".join(row["entity_ids"]) or "-", limit=30),
            literal(row.get("assignee") or "-", limit=20))


class CasesScreen(PukaraScreen):
    """The case list."""

    SUB_TITLE = "Cases"
    HELP = ("Filter with the search syntax (status:in-progress severity:>=high entity:minsa "
            "\"words\"); closed cases are hidden unless c is pressed or status:closed asked.")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "focus_query", "Filter", key_display="/"),
        Binding("enter", "open", "Open", show=False),
        Binding("s", "cycle_sort", "Sort"),
        Binding("c", "toggle_closed", "Closed"),
        Binding("right_square_bracket", "page(1)", "Next page", key_display="]"),
        Binding("left_square_bracket", "page(-1)", "Prev page", key_display="["),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.query_text = ""
        self.sort = CASE_SORTS[0]
        self.page_offset = 0
        self.include_closed = False
        self.page = Page(rows=[], total=0)

    def compose(self) -> ComposeResult:
        """Query line, status line, table."""
        yield Header()
        yield Input(placeholder="filter: status:new severity:>=high entity:minsa (enter)",
                    id="query")
        yield Static("loading…", id="status-line")
        yield list_table()
        yield Footer()

    def on_mount(self) -> None:
        """Columns and the first page."""
        table = self.query_one("#table", DataTable)
        set_columns(table, COLUMNS)
        self.action_reload()

    def on_screen_resume(self) -> None:
        """Back from a case: its row may have changed."""
        self.action_reload()

    def action_reload(self) -> None:
        """Fetch the current page."""
        query = CaseQuery(text=self.query_text, include_closed=self.include_closed,
                          sort=self.sort, offset=self.page_offset, limit=PAGE_SIZE)
        self.call(self.client.case_page, query, then=self.show_page, group="page")

    def show_page(self, page: Page) -> None:
        """Fill the table."""
        self.page = page
        table = self.query_one("#table", DataTable)
        keep = table.cursor_row
        table.clear()
        for row in page.rows:
            table.add_row(*case_cells(row), key=row["id"])
        if table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1))
        first = page.offset + 1 if page.rows else 0
        self.query_one("#status-line", Static).update(Text(
            f"{first:,}–{page.offset + len(page.rows):,} of {page.total_label()} cases · "
            f"sort {self.sort} · {'with' if self.include_closed else 'without'} closed"))

    @on(Input.Submitted, "#query")
    def _query(self, event: Input.Submitted) -> None:
        self.query_text = event.value.strip()
        self.page_offset = 0
        self.action_reload()
        self.query_one("#table", DataTable).focus()

    @on(DataTable.RowSelected, "#table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.app.push_screen(CaseDetailScreen(str(event.row_key.value)))

    def action_open(self) -> None:
        """Open the highlighted case."""
        table = self.query_one("#table", DataTable)
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            self.app.push_screen(CaseDetailScreen(str(key)))

    def action_focus_query(self) -> None:
        """Cursor to the filter line."""
        self.query_one("#query", Input).focus()

    def action_cycle_sort(self) -> None:
        """Next sort order."""
        self.sort = CASE_SORTS[(CASE_SORTS.index(self.sort) + 1) % len(CASE_SORTS)]
        self.page_offset = 0
        self.action_reload()

    def action_toggle_closed(self) -> None:
        """Show or hide closed cases."""
        self.include_closed = not self.include_closed
        self.page_offset = 0
        self.action_reload()

    def action_page(self, step: int) -> None:
        """Next or previous page."""
        offset = max(0, self.page_offset + step * PAGE_SIZE)
        if step > 0 and offset >= self.page.total and not self.page.total_capped:
            return
        self.page_offset = offset
        self.action_reload()
