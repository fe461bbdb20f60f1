"""The help screen: the keys of the screen it was opened from, and the global keys."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from tui.screens import SCREENS


def _rows(bindings: list[BindingType]) -> list[tuple[str, str]]:
    rows = []
    for item in bindings:
        if isinstance(item, Binding):
            key, description = item.key_display or item.key, item.description
        else:
            key, description = item[0], item[2] if len(item) > 2 else item[1]
        rows.append((key, description or ""))
    return rows


def screen_bindings(screen: Screen[Any]) -> list[BindingType]:
    """The screen's own keys, then those of our widgets around the focus (a case tab)."""
    found = list(getattr(screen, "BINDINGS", []))
    focused = screen.focused
    if focused is not None:
        for node in focused.ancestors_with_self:
            if node is not screen and type(node).__module__.startswith("tui."):
                found.extend(getattr(node, "BINDINGS", []))
    return found


class HelpScreen(ModalScreen[None]):
    """Keys of one screen; escape or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"), Binding("question_mark", "dismiss", "Close")]

    def __init__(self, of: Screen[Any]) -> None:
        super().__init__()
        self.of = of

    def compose(self) -> ComposeResult:
        """One table of keys."""
        table = Table(title=f"Keys: {self.of.__class__.__name__.removesuffix('Screen')}",
                      expand=True, show_edge=False)
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("action")
        for key, description in _rows(screen_bindings(self.of)):
            table.add_row(key, description)
        for entry in SCREENS:
            table.add_row(entry.key, f"go to {entry.title}")
        table.add_row("?", "this help")
        table.add_row("ctrl+p", "command palette")
        table.add_row("ctrl+q", "quit")
        hint = str(getattr(self.of, "HELP", ""))
        with VerticalScroll(classes="dialog"):
            yield Static(table)
            if hint:
                yield Static(hint, classes="dialog-hint", markup=False)

    async def action_dismiss(self, result: None = None) -> None:
        """Close."""
        self.dismiss(None)
