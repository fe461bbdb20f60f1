"""Evidence tab: files entities sent with their reports, and YARA results."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.widgets import DataTable

from tui.screens.case_tabs.base import CaseTab, table
from tui.widgets.safe import literal


def yara_results(case: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(value, rule, namespace) of every YARA hit on the case's observables."""
    found = []
    for item in case.get("observables", []):
        for hit in item.get("hits") or []:
            if hit.get("kind") == "yara":
                found.append((str(item["value"]), str(hit.get("rule")),
                              str(hit.get("namespace") or "")))
    return found


class EvidenceTab(CaseTab):
    """Evidence files (name, size, sha256, incident) then YARA matches."""

    def compose(self) -> ComposeResult:
        """Two tables."""
        yield table("file", "size", "sha256", "entity", table_id="evidence-table")
        yield table("YARA match on", "rule", "namespace", table_id="yara-table")

    def show(self, case: dict[str, Any]) -> None:
        """Fill both tables."""
        files = self.query_one("#evidence-table", DataTable)
        files.clear()
        for item in case.get("evidence", []):
            files.add_row(literal(item["filename"], limit=60), f"{item['size']:,}",
                          item["sha256"], literal(item["entity_id"], limit=20))
        matches = self.query_one("#yara-table", DataTable)
        matches.clear()
        for value, rule, namespace in yara_results(case):
            matches.add_row(literal(value, limit=80), literal(rule), literal(namespace))
