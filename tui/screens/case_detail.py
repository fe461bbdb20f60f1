"""Case detail: a header and the tabs of :data:`tui.screens.case_tabs.CASE_TABS`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane

from tui.client.base import EXPORT_FORMATS
from tui.screens.base import PukaraScreen
from tui.screens.case_tabs import CASE_TABS
from tui.screens.case_tabs.base import CaseTab
from tui.screens.dialogs import ChoiceDialog
from tui.widgets.colours import severity, status, tlp
from tui.widgets.safe import literal

EXTENSIONS = {"misp": "misp.json", "stix": "stix.json", "markdown": "md"}


def case_header(case: dict[str, Any]) -> Text:
    """``CASE-… status severity TLP  title`` (title literal)."""
    line = Text()
    line.append(f"{case['number']} ", style="bold")
    for part in (status(case["status"]), severity(case["severity"]), tlp(case["tlp"])):
        line.append_text(part)
        line.append(" ")
    line.append_text(literal(case["title"], limit=200))
    entities = ", ".join(case.get("entity_ids") or []) or "no entity"
    line.append("\n")
    line.append_text(literal(f"{entities} · assignee {case.get('assignee') or '-'}"))
    return line


class CaseDetailScreen(PukaraScreen):
    """One case; tabs come from the case-tab table."""

    SUB_TITLE = "Case"
    HELP = "Each tab lists its own keys at the bottom; e exports the case."
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("e", "export", "Export"),
        Binding("ctrl+r", "reload", "Reload"),
    ]

    def __init__(self, case_ref: str, *, export_dir: Path | None = None) -> None:
        super().__init__()
        self.case_ref = case_ref
        self.case: dict[str, Any] = {}
        self.export_dir = export_dir or Path.cwd()

    def compose(self) -> ComposeResult:
        """Header line and one pane per registered tab."""
        yield Header()
        yield Static("loading…", id="case-header")
        with TabbedContent(id="case-tabs"):
            for entry in CASE_TABS:
                with TabPane(entry.title, id=f"tab-{entry.name}"):
                    yield entry.load()()
        yield Footer()

    def on_mount(self) -> None:
        """Load the case."""
        self.reload()

    def reload(self) -> None:
        """Fetch the case again and re-render every tab."""
        self.call(self.client.case, self.case_ref, then=self.show, group="case")

    def action_reload(self) -> None:
        """Fetch again."""
        self.reload()

    def show(self, case: dict[str, Any]) -> None:
        """Render the case in the header and every tab."""
        self.case = case
        self.case_ref = case["id"]
        self.query_one("#case-header", Static).update(case_header(case))
        for tab in self.query(CaseTab):
            tab.show(case)

    def saved(self, message: str) -> Callable[[Any], None]:
        """A callback for a write: tell the analyst, then reload the case."""
        def done(_: Any) -> None:
            self.notify(message, markup=False)
            self.reload()
        return done

    def action_back(self) -> None:
        """Back to the list."""
        self.app.pop_screen()

    def action_export(self) -> None:
        """Export as MISP, STIX or Markdown to a file in the export folder."""
        if not self.case:
            return
        choices = [(f, f) for f in EXPORT_FORMATS]
        self.app.push_screen(ChoiceDialog(f"Export {self.case['number']} as", choices),
                             self._export)

    def _export(self, fmt: str | None) -> None:
        if not fmt:
            return
        target = self.export_dir / f"{self.case['number']}.{EXTENSIONS[fmt]}"

        def write() -> Path:
            text = self.client.export_case(self.case["id"], fmt)
            target.write_text(text + "\n", encoding="utf-8")
            return target
        self.call(write, then=lambda path: self.notify(f"wrote {path}", markup=False),
                  group="export")
