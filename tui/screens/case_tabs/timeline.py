"""Timeline tab: what happened, in order; n adds an analyst entry."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from tui.screens.case_tabs.base import CaseTab, table
from tui.screens.dialogs import TextDialog
from tui.widgets.safe import literal


class TimelineTab(CaseTab):
    """Entries of the case timeline."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("n", "add", "Add entry")]

    def compose(self) -> ComposeResult:
        """The timeline table."""
        yield table("when", "kind", "actor", "text", table_id="timeline-table")
        yield Static("n: add an entry", classes="tab-hint")

    def show(self, case: dict[str, Any]) -> None:
        """One row per entry (the newest 5,000)."""
        self.case = case
        rows = self.query_one("#timeline-table", DataTable)
        rows.clear()
        for entry in case.get("timeline", [])[-5000:]:
            when = str(entry.get("event_at") or entry.get("at") or "")[:16].replace("T", " ")
            rows.add_row(when, literal(entry.get("action"), limit=20),
                         literal(entry.get("actor"), limit=24),
                         literal(entry.get("text"), limit=300))

    def action_add(self) -> None:
        """Write an analyst entry."""
        def text(value: str | None) -> None:
            if value and value.strip():
                self.detail.call(self.detail.client.add_note, self.case["id"], value,
                                 then=self.detail.saved("timeline entry added"),
                                 group="case-write")
        self.app.push_screen(TextDialog("New timeline entry"), text)
