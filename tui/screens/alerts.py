"""Alerts: the live triage queue, paged, with search syntax, multi-select and triage keys."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Header, Input, Static

from cases.services.paging import ALERT_SORTS
from tui.client.base import AlertQuery, Page
from tui.screens.triage import TRIAGE_BINDINGS, TriageScreen
from tui.widgets.alert_detail import alert_detail
from tui.widgets.colours import severity, status, tlp
from tui.widgets.layout import set_columns, table_and_detail
from tui.widgets.safe import literal

PAGE_SIZE = 100
DEFAULT_QUERY = "status:new"
TITLE_WIDTH = 40
COLUMNS = (("✓", 1), ("id", 6), ("sev", 8), ("TLP", 7), ("title", TITLE_WIDTH), ("×", 6),
           ("status", 12), ("entity", 12), ("observed", 14))


def alert_cells(row: dict[str, Any], selected: bool) -> tuple[Any, ...]:
    """The table cells of one alert (untrusted text literal)."""
    return (Text("✓" if selected else " ", style="bold green"), str(row["id"]),
            severity(row["severity"]), tlp(row["tlp"], prefix=False),
            literal(row["title"], limit=TITLE_WIDTH), str(row["count"]), status(row["status"]),
            literal(row["entity_id"] or "-", limit=20), row["observed_at"][5:19].replace("T", " "))


class AlertsScreen(TriageScreen):
    """The alert queue."""

    SUB_TITLE = "Alerts"
    HELP = ("Query syntax: entity:minsa severity:>=high status:new tlp:amber "
            "class:intrusion-attempts/* source:suricata observable:1.2.3.4 case:none? "
            "since:24h \"a phrase\" word -negated. Enter applies it. Triage keys act on the "
            "selected alerts (space), or on the highlighted one when none is selected. "
            "Each row is a group of repeats (×).")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "focus_query", "Filter", key_display="/"),
        Binding("space", "toggle_select", "Select"),
        *TRIAGE_BINDINGS,
        Binding("g", "groups", "Groups"),
        Binding("right_square_bracket", "page(1)", "Next page", key_display="]"),
        Binding("left_square_bracket", "page(-1)", "Prev page", key_display="["),
        Binding("s", "cycle_sort", "Sort"),
        Binding("l", "toggle_live", "Live"),
        Binding("r", "reload", "Reload", show=False),
        Binding("escape", "clear_selection", "Clear selection", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.query_text = DEFAULT_QUERY
        self.sort = ALERT_SORTS[0]
        self.page_offset = 0
        self.page = Page(rows=[], total=0)
        self.selected: set[int] = set()
        self.live = True
        self.detail_id: int | None = None
        #: pages shown so far, and when the last was asked for and painted (perf_counter;
        #: the benchmark reads them)
        self.loads = 0
        self.requested_at = 0.0
        self.painted_at = 0.0

    def compose(self) -> ComposeResult:
        """Query line, status line, table and detail pane."""
        yield Header()
        yield Input(value=self.query_text, id="query",
                    placeholder="filter: severity:>=high status:new \"text\" (enter)")
        yield Static("loading…", id="status-line")
        yield from table_and_detail()
        yield Footer()

    def on_mount(self) -> None:
        """Columns, first page, live timer."""
        table = self.query_one("#table", DataTable)
        set_columns(table, COLUMNS)
        self.action_reload()
        self.set_interval(self.pukara.refresh_seconds, self._tick)

    def on_screen_resume(self) -> None:
        """Back from the group view or a dialog: the queue may have changed."""
        if self.loads:
            self.action_reload()

    # -- loading ---------------------------------------------------------------------
    def _tick(self) -> None:
        if self.live and self.is_current:
            self.action_reload()

    def action_reload(self) -> None:
        """Fetch the current page again."""
        self.requested_at = time.perf_counter()
        query = AlertQuery(text=self.query_text, sort=self.sort, offset=self.page_offset,
                           limit=PAGE_SIZE)
        self.call(self.client.alert_page, query, then=self.show_page, group="page")

    def show_page(self, page: Page) -> None:
        """Fill the table with one page, keeping the cursor on the same alert."""
        table = self.query_one("#table", DataTable)
        keep = self._cursor_id()
        self.page = page
        table.clear()
        for row in page.rows:
            table.add_row(*alert_cells(row, row["id"] in self.selected), key=str(row["id"]))
        if keep is not None and str(keep) in {str(r["id"]) for r in page.rows}:
            table.move_cursor(row=table.get_row_index(str(keep)))
        self._status()
        self.call_after_refresh(self._painted)
        if page.rows and self._cursor_id() != self.detail_id:
            self._load_detail()

    def _painted(self) -> None:
        self.painted_at = time.perf_counter()
        self.loads += 1

    def _status(self) -> None:
        first = self.page.offset + 1 if self.page.rows else 0
        last = self.page.offset + len(self.page.rows)
        text = (f"{first:,}–{last:,} of {self.page.total_label()} · sort {self.sort} · "
                f"{len(self.selected)} selected · {'live' if self.live else 'paused'}")
        self.query_one("#status-line", Static).update(Text(text))

    def _cursor_id(self) -> int | None:
        table = self.query_one("#table", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return int(key) if key is not None else None

    @on(DataTable.RowHighlighted, "#table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._load_detail()

    def _load_detail(self) -> None:
        alert_id = self._cursor_id()
        if alert_id is not None:
            self.detail_id = alert_id
            self.call(self.client.alert, alert_id, then=self._show_detail, group="detail")

    def _show_detail(self, found: dict[str, Any]) -> None:
        self.query_one("#detail-text", Static).update(alert_detail(found))

    # -- query, paging, sort -----------------------------------------------------------
    @on(Input.Submitted, "#query")
    def _query(self, event: Input.Submitted) -> None:
        self.query_text = event.value.strip()
        self.page_offset = 0
        self.action_reload()
        self.query_one("#table", DataTable).focus()

    def action_focus_query(self) -> None:
        """Put the cursor in the filter line."""
        self.query_one("#query", Input).focus()

    def action_page(self, step: int) -> None:
        """Next or previous page."""
        offset = max(0, self.page_offset + step * PAGE_SIZE)
        if step > 0 and offset >= self.page.total and not self.page.total_capped:
            return
        self.page_offset = offset
        self.action_reload()

    def action_cycle_sort(self) -> None:
        """The next sort order."""
        self.sort = ALERT_SORTS[(ALERT_SORTS.index(self.sort) + 1) % len(ALERT_SORTS)]
        self.page_offset = 0
        self.action_reload()

    def action_toggle_live(self) -> None:
        """Pause or resume the live refresh."""
        self.live = not self.live
        self._status()

    # -- selection and triage ----------------------------------------------------------
    def action_toggle_select(self) -> None:
        """Select or unselect the highlighted alert."""
        alert_id = self._cursor_id()
        if alert_id is None:
            return
        self.selected.symmetric_difference_update({alert_id})
        table = self.query_one("#table", DataTable)
        table.update_cell(str(alert_id), "✓", Text("✓" if alert_id in self.selected else " ",
                                                     style="bold green"))
        table.action_cursor_down()
        self._status()

    def action_clear_selection(self) -> None:
        """Unselect everything."""
        self.selected.clear()
        self.action_reload()

    def targets(self) -> list[int]:
        """The selected alerts, else the highlighted one."""
        if self.selected:
            return sorted(self.selected)
        current = self._cursor_id()
        return [] if current is None else [current]

    def first_title(self, ids: list[int]) -> str:
        """The title of the first target (offered as the new case's title)."""
        return next((r["title"] for r in self.page.rows if r["id"] == ids[0]), "")

    def after_triage(self) -> None:
        """Clear the selection and reload."""
        self.selected.clear()
        self.action_reload()

    def action_groups(self) -> None:
        """Groups of similar alerts for the current filter."""
        from tui.screens.alert_groups import AlertGroupsScreen

        self.app.push_screen(AlertGroupsScreen(self.query_text))
