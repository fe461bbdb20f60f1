"""Observables tab: the case's observables with their enrichment hits."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.widgets import DataTable

from tui.screens.case_tabs.base import CaseTab, table
from tui.widgets.safe import literal


def hit_summary(hits: list[dict[str, Any]]) -> str:
    """``MISP <event info> · YARA <rule>`` for the first few hits."""
    parts = []
    for hit in hits[:3]:
        if hit.get("kind") == "yara":
            parts.append(f"YARA {hit.get('rule')}")
        elif hit.get("kind") == "indicator":
            event = hit.get("event_info") or hit.get("event_uuid") or hit.get("source")
            parts.append(f"MISP {event}")
        else:
            parts.append(f"{hit.get('kind')} {hit.get('source') or ''}".strip())
    more = len(hits) - 3
    return " · ".join(parts) + (f" (+{more})" if more > 0 else "")


class ObservablesTab(CaseTab):
    """Type, value, origin and hits of each observable."""

    def compose(self) -> ComposeResult:
        """The observable table."""
        yield table("type", "value", "origin", "hits", table_id="observables-table")

    def show(self, case: dict[str, Any]) -> None:
        """One row per observable."""
        rows = self.query_one("#observables-table", DataTable)
        rows.clear()
        for item in case.get("observables", [])[:5000]:
            hits = item.get("hits") or []
            rows.add_row(literal(item["type"]), literal(item["value"], limit=120),
                         literal(item["origin"], limit=30),
                         literal(hit_summary(hits) or "-", limit=160))
