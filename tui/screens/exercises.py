"""Exercises: coordinators start, pause, resume and abort simulation exercises, watch the
clock, the inject log and the live scoreboard, score by hand and read the after-action report.

Every call goes through the :class:`~tui.client.base.CaseClient` in a thread worker. The
clock ticks once a second while the shown run is RUNNING (a paused or ended run is not
polled). The engine fixes a run's speed when it is created, so there are no speed keys:
the speed is chosen when starting (``n``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, MarkdownViewer, Static

from pukara.core.errors import PukaraError
from tui.client.base import CaseClient
from tui.screens.base import PukaraScreen
from tui.screens.dialogs import ChoiceDialog, TextDialog
from tui.widgets.safe import literal, visible

SPEEDS = (("1", "1× real time (the live national exercise)"), ("60", "60× rehearsal"),
          ("600", "600× fast rehearsal"), ("3000", "3000× smoke test"))
BOT_CHOICES = (("all", "every participant played by a bot"), ("none", "no bots"))
LIVE = ("RUNNING", "PAUSED", "SCHEDULED")
STATE_STYLES = {"RUNNING": "bold green", "PAUSED": "bold yellow", "CANCELED": "bold red",
                "FINISHED": "bold", "SCHEDULED": "", "fired": "green", "pending": "dim",
                "running": "bold cyan", "missed": "red", "failed": "bold red",
                "canceled": "red"}
SCORE_COLUMNS = (("entity", 16), ("sector", 10), ("points", 9), ("met", 4), ("missed", 6),
                 ("pending", 7), ("to report", 10))
INJECT_COLUMNS = (("at", 10), ("inject", 16), ("kind", 7), ("state", 8), ("fired", 10),
                  ("late s", 6))
GENERAL = "(whole exercise)"


def clock_text(seconds: float | None) -> str:
    """Exercise time as ``T+hh:mm:ss``."""
    whole = int(seconds or 0)
    return f"T+{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def clock_panel(state: dict[str, Any]) -> Text:
    """Two lines: the run and its title; the clock, speed, state and totals."""
    scores = state.get("scores", [])
    fired = sum(1 for i in state["injects"] if i["state"] == "fired")
    points = sum(s["points"] for s in scores)
    top = sum(s["max_points"] for s in scores)
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(clock_text(state["exercise_seconds"]), style="bold")
    text.append(f" / {clock_text(state['ends_at_seconds'])} · ×{state['speed']:g} · ")
    text.append(state["status"], style=STATE_STYLES.get(state["status"], ""))
    text.append(f" · injects {fired}/{len(state['injects'])} fired · "
                f"{len(scores)} {'entity' if len(scores) == 1 else 'entities'} · "
                f"{points}/{top} points\n")
    text.append_text(literal(state["exercise_id"], "bold"))
    text.append(" · ")
    text.append_text(literal(state["title"], limit=100))
    return text


def sector_line(state: dict[str, Any]) -> Text:
    """Per-sector aggregates in one line."""
    parts = [f"{visible(s['sector'] or '-', 30)} {s['points']}/{s['max_points']} pts "
             f"(met {s['met']}, missed {s['missed']}, pending {s['pending']})"
             for s in state.get("sectors", [])]
    return Text("sectors: " + " · ".join(parts) if parts else "no scores yet")


def summary_line(state: dict[str, Any]) -> Text:
    """The dashboard's one-panel summary of a live run: clock line and the top three."""
    text = clock_panel(state)
    for row in state.get("scores", [])[:3]:
        text.append("\n  ")
        text.append_text(literal(row["entity"], limit=30))
        text.append(f"  {row['points']}/{row['max_points']} pts · met {row['met']} · "
                    f"missed {row['missed']} · pending {row['pending']}")
    return text


def live_exercise(client: CaseClient) -> dict[str, Any] | None:
    """The status of the newest RUNNING or PAUSED run, or None (none, or a server without
    the exercise routes: the dashboard then simply has no exercise panel)."""
    try:
        found = [r for r in client.exercises()["runs"] if r["status"] in LIVE]
        return client.exercise_status(found[0]["id"]) if found else None
    except PukaraError:
        return None


class ReportScreen(Screen[None]):
    """The after-action report (Markdown); escape goes back."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, exercise_id: str, markdown: str) -> None:
        super().__init__()
        self.exercise_id = exercise_id
        self.markdown = markdown
        self.sub_title = f"After-action report {visible(exercise_id, 80)}"

    def compose(self) -> ComposeResult:
        """Header, the report, footer."""
        yield Header()
        yield MarkdownViewer(self.markdown, show_table_of_contents=False, id="report")
        yield Footer()


class ExercisesScreen(PukaraScreen):
    """Simulation exercises for coordinators."""

    SUB_TITLE = "Exercises"
    HELP = ("n starts a shipped scenario (speed and bots are asked); the clock ticks live. "
            "The speed is fixed per run by the engine, so there are no +/- keys.")
    SCOPED_CSS = False
    DEFAULT_CSS = """
    ExercisesScreen #ex-clock { height: 2; padding: 0 1; text-wrap: nowrap;
                                text-overflow: ellipsis; }
    ExercisesScreen #ex-body { layout: vertical; height: 1fr; }
    ExercisesScreen.-wide #ex-body { layout: horizontal; }
    ExercisesScreen .ex-pane { border: round $primary; height: 1fr; }
    ExercisesScreen.-wide #ex-scores, ExercisesScreen.-wide #ex-injects { width: 1fr; }
    ExercisesScreen #table, ExercisesScreen #injects { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "start", "Start"),
        Binding("space", "pause", "Pause", key_display="space"),
        Binding("p", "pause", "Pause", show=False),
        Binding("r", "resume", "Resume"),
        Binding("m", "score", "Score"),
        Binding("o", "report", "Report"),
        Binding("c", "choose", "Choose run"),
        Binding("K", "abort", "Abort", key_display="K"),
    ]

    def __init__(self) -> None:
        super().__init__()
        #: the run shown, and its last status document
        self.exercise_id: str | None = None
        self.state: dict[str, Any] | None = None
        self.listing: dict[str, Any] = {"scenarios": [], "runs": []}

    def compose(self) -> ComposeResult:
        """Clock panel, scoreboard and inject log, status line."""
        yield Header()
        yield Static("no exercise yet — n starts one", id="ex-clock")
        with Container(id="ex-body"):
            with Container(id="ex-scores", classes="ex-pane") as scores:
                scores.border_title = "Scoreboard"
                yield DataTable(id="table", cursor_type="row", zebra_stripes=True)
            with Container(id="ex-injects", classes="ex-pane") as injects:
                injects.border_title = "Inject log"
                yield DataTable(id="injects", cursor_type="row")
        yield Static("", id="status-line")
        yield Footer()

    def on_mount(self) -> None:
        """Columns, the first load, the clock tick and the slower run-list refresh."""
        for table, columns in (("#table", SCORE_COLUMNS), ("#injects", INJECT_COLUMNS)):
            for name, width in columns:
                self.query_one(table, DataTable).add_column(name, width=width)
        self.load()
        self.set_interval(1.0, self.tick)
        self.set_interval(self.pukara.refresh_seconds, self.load)

    # -- loading ------------------------------------------------------------------------
    def load(self) -> None:
        """Scenarios and runs; then the chosen (or the live, or the newest) run."""
        self.call(self.client.exercises, then=self.listed, group="list")

    def listed(self, listing: dict[str, Any]) -> None:
        """Keep the listing; pick a run if none is shown yet."""
        self.listing = listing
        found = listing["runs"]
        if self.exercise_id not in {r["id"] for r in found}:  # none yet, or purged
            self.exercise_id = None
        if self.exercise_id is None and found:
            live = [r for r in found if r["status"] in LIVE]
            self.exercise_id = (live or found)[0]["id"]
        if self.exercise_id is not None:
            self.refresh_status()

    def refresh_status(self) -> None:
        """Reload the shown run."""
        if self.exercise_id is not None:
            self.call(self.client.exercise_status, self.exercise_id, then=self.show,
                      group="status")

    def tick(self) -> None:
        """The live clock: poll while the run is running."""
        if self.state is not None and self.state["status"] in ("RUNNING", "SCHEDULED"):
            self.refresh_status()

    def show(self, state: dict[str, Any]) -> None:
        """Render one status document."""
        self.state = state
        self.exercise_id = state["exercise_id"]
        self.query_one("#ex-clock", Static).update(clock_panel(state))
        scores = self.query_one("#table", DataTable)
        keep = scores.cursor_row
        scores.clear()
        for row in state["scores"]:
            minutes = row["mean_minutes_to_report"]
            scores.add_row(literal(row["entity"]), literal(row["sector"] or "-"),
                           f"{row['points']}/{row['max_points']}", str(row["met"]),
                           str(row["missed"]), str(row["pending"]),
                           "-" if minutes is None else f"{minutes:.1f} min", key=row["entity"])
        if scores.row_count:
            scores.move_cursor(row=min(keep, scores.row_count - 1))
        log = self.query_one("#injects", DataTable)
        log.clear()
        for item in state["injects"]:
            late = item["lateness_seconds"]
            log.add_row(clock_text(item["offset_seconds"]), literal(item["id"]),
                        literal(item["kind"]),
                        Text(item["state"], style=STATE_STYLES.get(item["state"], "")),
                        "-" if item["exercise_seconds"] is None
                        else clock_text(item["exercise_seconds"]),
                        "-" if late is None else f"{late:.2f}")
        self.query_one("#status-line", Static).update(sector_line(state))

    # -- actions ------------------------------------------------------------------------
    def _need_run(self) -> str | None:
        if self.exercise_id is None:
            self.notify("no exercise chosen: n starts one", severity="warning")
        return self.exercise_id

    def action_start(self) -> None:
        """Scenario, then speed, then bots; then start."""
        choices = [(s["id"], f"{s['id']} — {s['title']} ({s['injects']} injects)")
                   for s in self.listing["scenarios"]]
        if not choices:
            self.notify("no shipped scenarios", severity="warning")
            return
        self.app.push_screen(ChoiceDialog("Start which scenario?", choices), self._scenario)

    def _scenario(self, scenario: str | None) -> None:
        if scenario is None:
            return

        def speed_chosen(speed: str | None) -> None:
            if speed is not None:
                self.app.push_screen(ChoiceDialog("Bots?", list(BOT_CHOICES)),
                                     lambda bots: self._launch(scenario, float(speed), bots))

        self.app.push_screen(ChoiceDialog("Speed?", list(SPEEDS)), speed_chosen)

    def _launch(self, scenario: str, speed: float, bots: str | None) -> None:
        if bots is None:
            return
        self.notify(f"starting {visible(scenario, 60)} at ×{speed:g}", markup=False)
        self.call(self.client.exercise_start, scenario, speed,
                  ["all"] if bots == "all" else [], then=self._started, group="action")

    def _started(self, state: dict[str, Any]) -> None:
        self.show(state)
        self.load()

    def action_pause(self) -> None:
        """Pause the shown run (its clock stops)."""
        if (run := self._need_run()) is not None:
            self.call(self.client.exercise_pause, run, then=self.show, group="action")

    def action_resume(self) -> None:
        """Resume the shown run."""
        if (run := self._need_run()) is not None:
            self.call(self.client.exercise_resume, run, then=self.show, group="action")

    def action_abort(self) -> None:
        """The kill switch, after a confirmation."""
        if (run := self._need_run()) is None:
            return
        choices = [("no", "no, keep it running"), ("abort", f"yes, abort {run} now")]

        def confirmed(answer: str | None) -> None:
            if answer == "abort":
                self.call(self.client.exercise_abort, run, then=self.show, group="action")

        self.app.push_screen(ChoiceDialog("Abort the exercise? Every inject stops.", choices),
                             confirmed)

    def action_choose(self) -> None:
        """Show another run."""
        choices = [(r["id"], f"{r['id']} · {r['status']} · ×{r['speed']:g}")
                   for r in self.listing["runs"]]
        if choices:
            self.app.push_screen(ChoiceDialog("Show which run?", choices), self._chosen)

    def _chosen(self, run: str | None) -> None:
        if run is not None:
            self.exercise_id = run
            self.refresh_status()

    def action_score(self) -> None:
        """Manual points for the highlighted entity: expectation, points, comment."""
        if self.state is None or not self.state["scores"]:
            self.notify("no participants to score", severity="warning")
            return
        table = self.query_one("#table", DataTable)
        entity = self.state["scores"][max(table.cursor_row, 0)]["entity"]
        names = sorted({o["inject"] + "/" + o["expectation"] for o in self.state["outcomes"]
                        if o["entity"] == entity})
        choices = [("", GENERAL), *((n, n) for n in names)]
        self.app.push_screen(ChoiceDialog(f"Score {entity}: which expectation?", choices),
                             lambda chosen: self._points(entity, chosen))

    def _points(self, entity: str, expectation: str | None) -> None:
        if expectation is None:
            return

        def typed(points: str | None) -> None:
            if points is None:
                return
            try:
                value = int(points.strip())
            except ValueError:
                self.notify(f"points must be a whole number, not {visible(points, 20)}",
                            severity="error", markup=False)
                return
            self.app.push_screen(TextDialog(f"Comment for {value:+d} to {entity}"),
                                 lambda text: self._score(entity, expectation, value, text))

        self.app.push_screen(TextDialog(f"Points for {entity} (may be negative)",
                                        placeholder="10"), typed)

    def _score(self, entity: str, expectation: str, points: int, comment: str | None) -> None:
        if comment is None or self.exercise_id is None:
            return
        self.call(self.client.exercise_score, self.exercise_id, entity, expectation or None,
                  points, comment, then=self.show, group="action")

    def action_report(self) -> None:
        """Open the after-action report."""
        if (run := self._need_run()) is not None:
            self.call(self.client.exercise_report, run,
                      then=lambda text: self._open_report(run, text), group="report")

    def _open_report(self, run: str, text: str) -> None:
        self.app.push_screen(ReportScreen(run, text))
