"""Comments tab: the discussion; n adds a comment."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from tui.screens.case_tabs.base import CaseTab, table
from tui.screens.dialogs import TextDialog
from tui.widgets.safe import literal


class CommentsTab(CaseTab):
    """Comments, oldest first (a virtualised table: 10,000 of them stay fast)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("n", "add", "Add comment")]

    def compose(self) -> ComposeResult:
        """The comment table."""
        yield table("when", "author", "comment", table_id="comments-table")
        yield Static("n: add a comment", classes="tab-hint")

    def show(self, case: dict[str, Any]) -> None:
        """One row per comment."""
        self.case = case
        rows = self.query_one("#comments-table", DataTable)
        rows.clear()
        for item in case.get("comments", []):
            rows.add_row(str(item.get("created_at") or "")[:16].replace("T", " "),
                         literal(item.get("author"), limit=24),
                         literal(item.get("text"), limit=500))

    def action_add(self) -> None:
        """Write a comment."""
        def text(value: str | None) -> None:
            if value and value.strip():
                self.detail.call(self.detail.client.add_comment, self.case["id"], value,
                                 then=self.detail.saved("comment added"), group="case-write")
        self.app.push_screen(TextDialog("New comment"), text)
