"""Overview tab: the case's fields, each editable in place (enter)."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from tui.screens.case_tabs.base import CaseTab, table
from tui.screens.dialogs import ChoiceDialog, TextDialog
from tui.widgets.colours import severity, status, tlp
from tui.widgets.safe import literal

CHOICES = {
    "severity": ("info", "low", "medium", "high", "critical"),
    "tlp": ("clear", "green", "amber", "amber+strict", "red"),
    "pap": ("clear", "green", "amber", "red"),
    "status": ("new", "in-progress", "contained", "resolved"),
}
EDITABLE = ("title", "status", "severity", "tlp", "pap", "assignee", "classification",
            "tags", "techniques", "description")
SHOWN = (*EDITABLE, "entity_ids", "created_by", "created_at", "updated_at", "template")
LISTS = ("tags", "techniques", "entity_ids")


def _cell(name: str, value: Any) -> Any:
    if name == "severity":
        return severity(value)
    if name == "tlp":
        return tlp(value)
    if name == "status":
        return status(value)
    if name in LISTS:
        return literal(", ".join(value or []) or "-", limit=300)
    return literal("-" if value in (None, "") else value, limit=300)


class OverviewTab(CaseTab):
    """Fields of the case; enter edits the highlighted one."""

    HELP = "enter edits a field; lists (tags, techniques) are comma-separated."
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "edit", "Edit field")]

    def compose(self) -> ComposeResult:
        """The field table."""
        yield table("field", "value", table_id="overview-table")
        yield Static("enter: edit the highlighted field", classes="tab-hint")

    def show(self, case: dict[str, Any]) -> None:
        """One row per field."""
        self.case = case
        fields = self.query_one("#overview-table", DataTable)
        keep = fields.cursor_row
        fields.clear()
        for name in SHOWN:
            fields.add_row(name, _cell(name, case.get(name)), key=name)
        fields.move_cursor(row=min(keep, fields.row_count - 1))

    @on(DataTable.RowSelected, "#overview-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_edit()

    def action_edit(self) -> None:
        """Edit the highlighted field (a list to pick from, or a line of text)."""
        name = self.row_key(self.query_one("#overview-table", DataTable))
        if name not in EDITABLE or not self.case:
            if name:
                self.notify(f"{name} is not editable here", severity="warning")
            return
        current = self.case.get(name)
        if name in CHOICES:
            self.app.push_screen(ChoiceDialog(f"{self.case['number']}: {name}",
                                              [(c, c) for c in CHOICES[name]]),
                                 lambda value: self._save(name, value))
            return
        text = ", ".join(current or []) if name in LISTS else (current or "")
        self.app.push_screen(TextDialog(f"{self.case['number']}: {name}", value=str(text)),
                             lambda value: self._save(name, value))

    def _save(self, name: str, value: str | None) -> None:
        if value is None:
            return
        new: Any = [v.strip() for v in value.split(",") if v.strip()] if name in LISTS else value
        self.detail.call(self.detail.client.update_case, self.case["id"], {name: new},
                         then=self.detail.saved(f"{name} saved"), group="case-write")
