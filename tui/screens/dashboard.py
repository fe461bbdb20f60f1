"""Dashboard: the national picture, refreshed on a timer."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical
from textual.widgets import Footer, Header, Sparkline, Static

from tui.screens.base import PukaraScreen
from tui.screens.exercises import live_exercise, summary_line
from tui.widgets.colours import severity
from tui.widgets.safe import literal

PANELS = ("cases", "deadlines", "campaigns", "indicators", "compliance", "sectors")


def _table(*columns: str) -> Table:
    table = Table(expand=True, show_edge=False, pad_edge=False, box=None,
                  header_style="bold")
    for index, name in enumerate(columns):
        table.add_column(name, justify="right" if index else "left", no_wrap=True,
                         overflow="ellipsis", ratio=2 if index == 0 else 1)
    return table


def cases_panel(board: dict[str, Any]) -> RenderableType:
    """Open cases by severity."""
    table = _table("severity", "open")
    by = board["open_cases"]["by_severity"]
    for level in ("critical", "high", "medium", "low", "info"):
        if by.get(level):
            table.add_row(severity(level), str(by[level]))
    return table if table.row_count else Text("no open cases", style="dim")


def sectors_panel(board: dict[str, Any]) -> RenderableType:
    """Open cases by sector and by entity."""
    table = _table("sector / entity", "open")
    for name, count in sorted(board["open_cases"]["by_sector"].items(), key=lambda i: -i[1]):
        table.add_row(literal(name, "bold"), str(count))
    for name, count in sorted(board["open_cases"]["by_entity"].items(),
                              key=lambda i: -i[1])[:8]:
        table.add_row(literal(f"  {name}"), str(count))
    return table if table.row_count else Text("no open cases", style="dim")


def deadlines_panel(board: dict[str, Any]) -> RenderableType:
    """Reporting deadlines overdue and due soon."""
    lists = board["deadlines"]
    table = _table("incident", "entity", "stage")
    for state, style in (("overdue", "bold red"), ("due_soon", "yellow")):
        for item in lists[state][:8]:
            stages = item["stages"]
            more = f" +{len(stages) - 1}" if len(stages) > 1 else ""
            table.add_row(literal(item["tracking_number"]), literal(item["entity_id"]),
                          Text(f"{stages[0]}{more}", style=style))
    summary = Text(f"{len(lists['overdue'])} overdue · {len(lists['due_soon'])} due soon")
    return Group(summary, table) if table.row_count else summary


def campaigns_panel(board: dict[str, Any]) -> RenderableType:
    """Active national campaigns (entity counts only)."""
    found = board["active_campaigns"]
    table = _table("observable", "entities")
    for item in found["campaigns"][:8]:
        table.add_row(literal(item["observable"]), str(item["entities"]))
    summary = Text(f"{found['count']} active · {found['open_alerts']} open alerts")
    return Group(summary, table) if table.row_count else summary


def indicators_panel(board: dict[str, Any]) -> RenderableType:
    """Indicators hit most among recent alerts."""
    table = _table("indicator", "alerts")
    for item in board["top_indicators"][:8]:
        table.add_row(literal(item["indicator"]), str(item["alerts"]))
    return table if table.row_count else Text("no indicator hits", style="dim")


def compliance_panel(board: dict[str, Any]) -> RenderableType:
    """Reporting compliance by sector (met rate, overdue)."""
    table = _table("sector", "met", "overdue")
    for sector, row in board["compliance_by_sector"].items():
        rate = "-" if row["met_rate"] is None else f"{row['met_rate']:.0%}"
        table.add_row(literal(sector), rate, Text(str(row["overdue"]),
                                                   style="bold red" if row["overdue"] else ""))
    return table if table.row_count else Text("no reporting deadlines yet", style="dim")


RENDERERS = {"cases": cases_panel, "sectors": sectors_panel, "deadlines": deadlines_panel,
             "campaigns": campaigns_panel, "indicators": indicators_panel,
             "compliance": compliance_panel}
TITLES = {"cases": "Open cases", "sectors": "By sector / entity",
          "deadlines": "Reporting deadlines", "campaigns": "Active campaigns",
          "indicators": "Top indicators hit", "compliance": "Compliance by sector"}


class DashboardScreen(PukaraScreen):
    """Alerts per minute, open cases, deadlines, campaigns, indicators, compliance."""

    SUB_TITLE = "Dashboard"
    HELP = "Refreshes on its own every few seconds; r refreshes now."
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "refresh", "Refresh")]

    def __init__(self) -> None:
        super().__init__()
        #: the last dashboard document shown (None until the first load)
        self.board: dict[str, Any] | None = None
        #: when the last document was painted (perf_counter; the benchmark reads it)
        self.painted_at = 0.0

    def compose(self) -> ComposeResult:
        """Sparkline on top, a grid of panels below."""
        yield Header()
        with Vertical(id="rate"):
            yield Static("Alerts per minute (last 60 min)", id="rate-title")
            yield Sparkline([0] * 60, id="sparkline")
        exercise = Static("", id="exercise-summary", classes="panel")
        exercise.styles.height = "auto"
        exercise.display = False
        yield exercise
        with Grid(id="panels"):
            for name in PANELS:
                panel = Static("loading…", id=f"panel-{name}", classes="panel")
                panel.border_title = TITLES[name]
                yield panel
        yield Footer()

    def on_mount(self) -> None:
        """Load now and on a timer."""
        self.action_refresh()
        self.set_interval(self.pukara.refresh_seconds, self.action_refresh)

    def action_refresh(self) -> None:
        """Reload every aggregate."""
        self.call(self.client.dashboard, self.now(), then=self.show, group="dashboard")
        self.call(live_exercise, self.client, then=self.show_exercise, group="exercise")

    def show(self, board: dict[str, Any]) -> None:
        """Render one dashboard document."""
        self.board = board
        rates = [int(m["alerts"]) for m in board["alerts_per_minute"]]
        self.query_one("#sparkline", Sparkline).data = rates or [0]
        self.query_one("#rate-title", Static).update(Text(
            f"Alerts per minute (last 60 min): {sum(rates):,} · peak {max(rates, default=0):,}"
            f"/min · {board.get('alerts_total', 0):,} alerts stored"))
        for name in PANELS:
            self.query_one(f"#panel-{name}", Static).update(RENDERERS[name](board))
        self.sub_title = f"Dashboard at {board['generated_at']}"
        self.call_after_refresh(self._painted)

    def show_exercise(self, state: dict[str, Any] | None) -> None:
        """The running exercise's clock and scoreboard summary (hidden when none runs)."""
        panel = self.query_one("#exercise-summary", Static)
        panel.display = state is not None
        if state is not None:
            panel.border_title = "Exercise"
            panel.update(summary_line(state))

    def _painted(self) -> None:
        self.painted_at = time.perf_counter()
