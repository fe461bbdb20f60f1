"""Linked alerts and entity incident reports."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.widgets import DataTable

from tui.screens.case_tabs.base import CaseTab, table
from tui.widgets.colours import severity, status
from tui.widgets.safe import literal


class LinksTab(CaseTab):
    """Alerts merged or promoted into the case, and entity reports linked to it."""

    def compose(self) -> ComposeResult:
        """Two tables."""
        yield table("alert", "sev", "status", "×", "title", table_id="links-alerts")
        yield table("report", "entity", "status", "title", table_id="links-reports")

    def show(self, case: dict[str, Any]) -> None:
        """Fill both tables (the first 2,000 alerts)."""
        found = self.query_one("#links-alerts", DataTable)
        found.clear()
        for item in case.get("alerts", [])[:2000]:
            found.add_row(str(item["id"]), severity(item["severity"]), status(item["status"]),
                          str(item["count"]), literal(item["title"], limit=120))
        reports = self.query_one("#links-reports", DataTable)
        reports.clear()
        for item in case.get("incidents", []):
            reports.add_row(literal(item["tracking_number"]), literal(item["entity_id"]),
                            status(item["status"]), literal(item["title"], limit=120))
