"""Intel: look up a value (indicator details, where it was seen) and intel statistics."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, VerticalScroll
from textual.widgets import Footer, Header, Input, Static

from tui.screens.base import PukaraScreen
from tui.widgets.alert_detail import hits_table
from tui.widgets.colours import severity, status
from tui.widgets.safe import literal


def lookup_view(found: dict[str, Any]) -> Group:
    """Hits of a value and the alerts and cases it was seen in."""
    seen = found.get("seen") or {}
    alerts = Table("alert", "sev", "status", "entity", "title", box=None, expand=True,
                   header_style="bold")
    for item in seen.get("alerts", [])[:50]:
        alerts.add_row(str(item["id"]), severity(item["severity"]), status(item["status"]),
                       literal(item["entity_id"] or "-"), literal(item["title"], limit=100))
    cases = Table("case", "status", "title", box=None, expand=True, header_style="bold")
    for item in seen.get("cases", [])[:50]:
        cases.add_row(literal(item["number"]), status(item["status"]),
                      literal(item["title"], limit=100))
    return Group(
        Text.assemble(("Value ", "bold"), literal(found.get("value"), limit=500)),
        Text(f"\nIndicator hits ({len(found.get('hits') or [])})", style="bold underline"),
        hits_table(found.get("hits") or []),
        Text(f"\nSeen in alerts ({len(seen.get('alerts', []))})", style="bold underline"),
        alerts if alerts.row_count else Text("none", style="dim"),
        Text(f"\nSeen in cases ({len(seen.get('cases', []))})", style="bold underline"),
        cases if cases.row_count else Text("none", style="dim"))


def stats_view(stats: dict[str, Any]) -> Group:
    """Counts by type and by source, sources and warninglists."""
    kinds = Table("type", "indicators", box=None, expand=True, header_style="bold")
    for name, count in stats["by_type"].items():
        kinds.add_row(literal(name), f"{count:,}")
    sources = Table("source", "indicators", "last sync", box=None, expand=True,
                    header_style="bold")
    last = {s["name"]: s.get("last_sync_at") or "-" for s in stats.get("sources", [])}
    for name, count in stats["by_source"].items():
        sources.add_row(literal(name), f"{count:,}", literal(str(last.get(name, "-"))[:19]))
    return Group(
        Text(f"{stats['indicators']:,} indicators · {stats['active']:,} active · "
             f"{stats['expired']:,} expired · {len(stats['warninglists'])} warninglists",
             style="bold"),
        kinds if kinds.row_count else Text("no indicators loaded", style="dim"),
        Text(""), sources if sources.row_count else Text(""))


class IntelScreen(PukaraScreen):
    """Lookup on the left (or top), statistics on the right (or bottom)."""

    SUB_TITLE = "Intel"
    HELP = "Type an IP, domain, URL or hash (defanged is fine) and press enter."
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "focus_lookup", "Look up", key_display="/"),
        Binding("r", "reload", "Reload stats"),
    ]

    def compose(self) -> ComposeResult:
        """Lookup line, result and stats."""
        yield Header()
        yield Input(placeholder="look up a value: 1.2.3.4, evil[.]example, sha256… (enter)",
                    id="intel-input")
        with Container(id="intel-body"):
            with VerticalScroll(id="intel-result"):
                yield Static(Text("Look up a value to see indicator details and where it "
                                  "was seen.", style="dim"), id="intel-result-text")
            with VerticalScroll(id="intel-stats"):
                yield Static("loading…", id="intel-stats-text")
        yield Footer()

    def on_mount(self) -> None:
        """Stats now; focus the lookup."""
        self.query_one("#intel-input", Input).focus()
        self.action_reload()

    def action_reload(self) -> None:
        """Fetch the statistics."""
        self.call(self.client.intel_stats, then=self._stats, group="stats")

    def _stats(self, stats: dict[str, Any]) -> None:
        self.query_one("#intel-stats-text", Static).update(stats_view(stats))

    def action_focus_lookup(self) -> None:
        """Cursor to the lookup line."""
        self.query_one("#intel-input", Input).focus()

    @on(Input.Submitted, "#intel-input")
    def _lookup(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.call(self.client.intel_lookup, event.value.strip(), then=self._found,
                      group="lookup")

    def _found(self, found: dict[str, Any]) -> None:
        self.query_one("#intel-result-text", Static).update(lookup_view(found))
