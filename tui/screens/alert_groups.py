"""Alert groups: similar alerts (same source, signature, entity and key observable, close
in time) triaged together; the triage keys act on every alert of the selected groups."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Header, Static

from tui.screens.triage import TRIAGE_BINDINGS, TriageScreen
from tui.widgets.colours import severity
from tui.widgets.layout import set_columns, table_and_detail
from tui.widgets.safe import label_value, literal

COLUMNS = (("✓", 1), ("sev", 8), ("alerts", 6), ("events", 7), ("entity", 10),
           ("observable", 16), ("title", 36), ("last seen", 14))


def group_cells(group: dict[str, Any], selected: bool) -> tuple[Any, ...]:
    """Table cells of one group."""
    return (Text("✓" if selected else " ", style="bold green"), severity(group["severity"]),
            str(group["alerts"]), str(group["events"]),
            literal(group["entity_id"] or "-", limit=20),
            literal(group["observable"] or "-", limit=40), literal(group["title"], limit=80),
            group["last_seen"][5:16].replace("T", " "))


def group_detail(group: dict[str, Any]) -> Text:
    """Everything about one group."""
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(group["statuses"].items()))
    return label_value([
        ("group", group["key"]), ("title", group["title"]),
        ("severity", severity(group["severity"])), ("source", group["source"]),
        ("signature", group["signature"]), ("class", group["classification"]),
        ("entity", group["entity_id"] or "unassigned"),
        ("observable", group["observable"] or "-"),
        ("alerts", f"{group['alerts']} rows, {group['events']} events, {group['hits']} hits"),
        ("statuses", statuses), ("first seen", group["first_seen"]),
        ("last seen", group["last_seen"]),
    ])


class AlertGroupsScreen(TriageScreen):
    """Groups of the alert queue's filter (field filters only)."""

    SUB_TITLE = "Alert groups"
    HELP = ("Groups of similar alerts for the queue's field filters (no free text). The "
            "triage keys act on every alert of the selected groups (space), or of the "
            "highlighted one.")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("space", "toggle_select", "Select"),
        *TRIAGE_BINDINGS,
        Binding("r", "reload", "Reload"),
    ]

    def __init__(self, query_text: str) -> None:
        super().__init__()
        self.query_text = query_text
        self.groups: dict[str, dict[str, Any]] = {}
        self.selected: set[str] = set()

    def compose(self) -> ComposeResult:
        """Status line, table and detail pane."""
        yield Header()
        yield Static("loading…", id="status-line")
        yield from table_and_detail()
        yield Footer()

    def on_mount(self) -> None:
        """Columns, groups, live timer."""
        table = self.query_one("#table", DataTable)
        set_columns(table, COLUMNS)
        self.action_reload()
        self.set_interval(self.pukara.refresh_seconds, self._tick)

    def _tick(self) -> None:
        if self.is_current:
            self.action_reload()

    def action_reload(self) -> None:
        """Fetch the groups again."""
        self.call(self.client.alert_groups, self.query_text, then=self.show, group="groups")

    def show(self, groups: list[dict[str, Any]]) -> None:
        """Fill the table, keeping the cursor on the same group."""
        table = self.query_one("#table", DataTable)
        keep = self._cursor_key()
        self.groups = {g["key"]: g for g in groups}
        self.selected &= set(self.groups)
        table.clear()
        for group in groups:
            table.add_row(*group_cells(group, group["key"] in self.selected), key=group["key"])
        if keep in self.groups:
            table.move_cursor(row=table.get_row_index(keep))
        self._status()
        self._detail()

    def _status(self) -> None:
        alerts = sum(g["alerts"] for g in self.groups.values())
        self.query_one("#status-line", Static).update(Text(
            f"{len(self.groups):,} groups of {alerts:,} alerts · {len(self.selected)} selected "
            f"· filter: {self.query_text or '(open queue)'}"))

    def _cursor_key(self) -> str | None:
        table = self.query_one("#table", DataTable)
        if not table.row_count:
            return None
        value = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return None if value is None else str(value)

    @on(DataTable.RowHighlighted, "#table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail()

    def _detail(self) -> None:
        key = self._cursor_key()
        if key in self.groups:
            self.query_one("#detail-text", Static).update(group_detail(self.groups[key]))

    def action_toggle_select(self) -> None:
        """Select or unselect the highlighted group."""
        key = self._cursor_key()
        if key is None:
            return
        self.selected.symmetric_difference_update({key})
        table = self.query_one("#table", DataTable)
        table.update_cell(key, "✓", Text("✓" if key in self.selected else " ",
                                         style="bold green"))
        table.action_cursor_down()
        self._status()

    def targets(self) -> list[int]:
        """Every alert of the selected groups, else of the highlighted one."""
        keys = self.selected or ({self._cursor_key()} - {None})
        return sorted({i for k in keys if k in self.groups for i in self.groups[k]["alert_ids"]})

    def first_title(self, ids: list[int]) -> str:
        """The highlighted group's title."""
        key = self._cursor_key()
        return str(self.groups[key]["title"]) if key in self.groups else ""

    def after_triage(self) -> None:
        """Clear the selection and reload."""
        self.selected.clear()
        self.action_reload()

    def action_back(self) -> None:
        """Back to the queue."""
        self.app.pop_screen()
