"""Tasks tab: mark done (x), reassign (o)."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from tui.screens.case_tabs.base import CaseTab, table
from tui.screens.dialogs import TextDialog
from tui.widgets.colours import status
from tui.widgets.safe import literal


class TasksTab(CaseTab):
    """The case's tasks."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "done", "Mark done"), Binding("o", "reassign", "Reassign")]

    def compose(self) -> ComposeResult:
        """The task table."""
        yield table("status", "title", "owner", "due", table_id="tasks-table")
        yield Static("x: mark done · o: reassign", classes="tab-hint")

    def show(self, case: dict[str, Any]) -> None:
        """One row per task."""
        self.case = case
        tasks = self.query_one("#tasks-table", DataTable)
        keep = tasks.cursor_row
        tasks.clear()
        for task in case.get("tasks", []):
            tasks.add_row(status(task["status"]), literal(task["title"], limit=120),
                          literal(task["owner"] or "-", limit=40),
                          (task["due_at"] or "-")[:16].replace("T", " "), key=task["id"])
        if tasks.row_count:
            tasks.move_cursor(row=min(keep, tasks.row_count - 1))

    def _task_id(self) -> str | None:
        return self.row_key(self.query_one("#tasks-table", DataTable))

    def action_done(self) -> None:
        """Mark the highlighted task done."""
        if task_id := self._task_id():
            self.detail.call(self.detail.client.set_task_status, task_id, "done",
                             then=self.detail.saved("task done"), group="case-write")

    def action_reassign(self) -> None:
        """Give the highlighted task to someone else."""
        task_id = self._task_id()
        if not task_id:
            return

        def owner(value: str | None) -> None:
            if value and value.strip():
                self.detail.call(self.detail.client.reassign_task, task_id, value.strip(),
                                 then=self.detail.saved(f"task given to {value.strip()}"),
                                 group="case-write")
        self.app.push_screen(TextDialog("Reassign task to"), owner)
