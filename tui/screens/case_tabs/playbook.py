"""Playbook tab: the runs on the case and each step's state and owner, refreshed on a timer.

Keys (each one engine call through the client, then the case reloads): ``x`` marks the
highlighted manual step's task done, ``A`` approves a waiting approval (coordinator or
admin; the engine refuses anyone else and the refusal is shown as a notice) with an optional
comment, ``R`` retries a failed step, ``s`` starts a playbook by hand (matching ones first).
Step names, errors and owners are untrusted text and shown literally.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from tui.screens.case_tabs.base import CaseTab, table
from tui.screens.dialogs import ChoiceDialog, TextDialog
from tui.widgets.safe import literal

#: step and run states in the 16 ANSI colours; the word is always shown too
STATE_STYLE = {
    "pending": "default",
    "running": "bold cyan",
    "waiting": "bold yellow",
    "done": "green",
    "failed": "bold white on red",
    "skipped": "dim",
    "cancelled": "dim",
}
#: state and owner first: they are what an 80-column terminal must show
COLUMNS = ("state", "owner", "step", "phase", "kind", "tries", "next attempt", "error")
HINT = "x: manual step done · A: approve · R: retry failed · s: start a playbook"


def state_text(value: Any) -> Text:
    """A state word in its colour."""
    word = str(value or "-")
    return Text(word, style=STATE_STYLE.get(word, "default"))


def _when(value: Any) -> str:
    return str(value)[:16].replace("T", " ") if value else "-"


def _run_cells(run: dict[str, Any]) -> tuple[Any, ...]:
    title = Text("▸ ", style="bold")
    title.append_text(literal(f"{run['playbook']} v{run['version']}: {run['title']}",
                              style="bold", limit=80))
    return (state_text(run["state"]), literal(run.get("started_by") or "-", limit=24), title,
            "", "run", "", "", "")


def _step_cells(step: dict[str, Any]) -> tuple[Any, ...]:
    owner = step["decided_by"] or step["owner"]
    return (state_text(step["state"]), literal(owner or "-", limit=24),
            literal(step["name"], limit=60), literal(step["phase"], limit=20),
            literal(step["kind"], limit=10), str(step["attempts"]),
            _when(step["next_attempt_at"]), literal(step["error"] or "", limit=160))


class PlaybookTab(CaseTab):
    """Runs and steps of the case's playbooks."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "step_done", "Manual step done"),
        Binding("A", "approve", "Approve (coordinator)"),
        Binding("R", "retry", "Retry failed step"),
        Binding("s", "start", "Start a playbook"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[dict[str, Any]] = []
        self.steps: dict[str, tuple[str, dict[str, Any]]] = {}

    def compose(self) -> ComposeResult:
        """The run/step table and the key hint."""
        yield table(*COLUMNS, table_id="playbook-table")
        yield Static(HINT, classes="tab-hint")

    def on_mount(self) -> None:
        """Refresh the steps on the app's refresh period (the engine moves on its own)."""
        self.set_interval(self.detail.pukara.refresh_seconds, self.refresh_status)

    def show(self, case: dict[str, Any]) -> None:
        """A new case view: fetch its playbook runs."""
        self.case = case
        self.refresh_status()

    def refresh_status(self) -> None:
        """Fetch the runs of the case in a worker."""
        if self.case:
            self.detail.call(self.detail.client.playbook_status, self.case["id"],
                             then=self.show_runs, group="playbook")

    def show_runs(self, runs: list[dict[str, Any]]) -> None:
        """One row per run, then one per step (row key ``run/step``)."""
        self.runs = runs
        self.steps = {}
        rows = self.query_one("#playbook-table", DataTable)
        keep = rows.cursor_row
        rows.clear()
        for run in runs:
            rows.add_row(*_run_cells(run), key=f"{run['run_id']}/")
            for step in run["steps"]:
                key = f"{run['run_id']}/{step['id']}"
                self.steps[key] = (run["run_id"], step)
                rows.add_row(*_step_cells(step), key=key)
        if rows.row_count:
            rows.move_cursor(row=min(max(keep, 0), rows.row_count - 1))

    def selected(self) -> tuple[str, dict[str, Any]] | None:
        """The run id and step of the highlighted row (None on a run row)."""
        key = self.row_key(self.query_one("#playbook-table", DataTable))
        return self.steps.get(key) if key else None

    def _pick(self, kind: str | None, state: str, doing: str) -> tuple[str, str] | None:
        """The highlighted step if it is of ``kind`` in ``state``; else a notice."""
        found = self.selected()
        if found is None:
            self.notify(f"highlight a step to {doing}", severity="warning", markup=False)
            return None
        run_id, step = found
        if (kind and step["kind"] != kind) or step["state"] != state:
            wanted = f"a {state} {kind} step" if kind else f"a {state} step"
            self.notify(f"{doing}: {step['id']} is a {step['state']} {step['kind']} step, "
                        f"not {wanted}", severity="warning", markup=False)
            return None
        return run_id, str(step["id"])

    def _changed(self, message: str) -> Any:
        return self.detail.saved(message)

    def action_step_done(self) -> None:
        """Mark the highlighted manual step's task done."""
        if picked := self._pick("task", "waiting", "mark done"):
            self.detail.call(self.detail.client.playbook_step_done, *picked,
                             then=self._changed(f"step {picked[1]} done"), group="case-write")

    def action_approve(self) -> None:
        """Approve the highlighted approval step, with an optional comment."""
        picked = self._pick("approval", "waiting", "approve")
        if picked is None:
            return

        def comment(value: str | None) -> None:
            if value is not None:
                self.detail.call(self.detail.client.playbook_approve, *picked, value.strip(),
                                 then=self._changed(f"step {picked[1]} approved"),
                                 group="case-write")
        self.app.push_screen(TextDialog(f"Approve {picked[1]}: comment (optional)"), comment)

    def action_retry(self) -> None:
        """Retry the highlighted failed step."""
        if picked := self._pick(None, "failed", "retry"):
            self.detail.call(self.detail.client.playbook_retry, *picked,
                             then=self._changed(f"step {picked[1]} retried"),
                             group="case-write")

    def action_start(self) -> None:
        """Pick a playbook (those whose ``when`` fits the case first) and start it."""
        if self.case:
            self.detail.call(self.detail.client.playbooks, self.case["id"],
                             then=self._choose, group="playbook-list")

    def _choose(self, books: list[dict[str, Any]]) -> None:
        running = {run["playbook"] for run in self.runs}
        choices = [(b["id"], f"{'✓ ' if b.get('matches') else '  '}{b['id']}: {b['title']}")
                   for b in books if b["id"] not in running]
        if not choices:
            self.notify("every playbook already runs on this case", markup=False)
            return

        def start(playbook_id: str | None) -> None:
            if playbook_id:
                self.detail.call(self.detail.client.playbook_start, playbook_id,
                                 self.case["id"], then=self._changed(f"{playbook_id} started"),
                                 group="case-write")
        self.app.push_screen(ChoiceDialog("Start a playbook (✓ matches the case)", choices),
                             start)
