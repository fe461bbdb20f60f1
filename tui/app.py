"""The Pukara terminal UI: ``PukaraApp(client, clock=...)``.

Screens come from the table in :mod:`tui.screens` (one module plus one registration line
per screen); each is a Textual *mode*, switched with its number key, from the command
palette (ctrl+p) or with tab/shift+tab. Every screen reaches data through the one
:class:`~tui.client.base.CaseClient` it is given (local store or analyst API), from thread
workers; ``clock`` is the time the dashboard and relative queries use (frozen in tests).
Whoever made the client closes it after ``run()``.
"""

from __future__ import annotations

import select
import sys
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial
from typing import Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from pukara.core.schema import utcnow
from tui.client.base import CaseClient
from tui.screens import SCREENS, ScreenEntry

Clock = Callable[[], datetime]
#: how often the app checks that its terminal is still there
TERMINAL_CHECK_SECONDS = 2.0
_HANGUP = select.POLLHUP | select.POLLERR | select.POLLNVAL


def terminal_gone(fd: int) -> bool:
    """Whether the terminal on ``fd`` hung up: its window, SSH session or tmux session
    closed without a SIGHUP reaching us (``make demo`` runs us below make and a shell)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return any(events & _HANGUP for _, events in poller.poll(0))


def _mode_factory(entry: ScreenEntry) -> Callable[[], Screen[Any]]:
    def make() -> Screen[Any]:
        return entry.load()()
    return make


class PukaraApp(App[None]):
    """The analysts' console."""

    TITLE = "Pukara"
    SUB_TITLE = "national incident response"
    CSS_PATH = "pukara.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    MODES: ClassVar[dict[str, Any]] = {e.name: _mode_factory(e) for e in SCREENS}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
        *(Binding(e.key, f"switch_mode('{e.name}')", e.title, show=False) for e in SCREENS),
    ]

    def __init__(self, client: CaseClient, *, clock: Clock | None = None,
                 refresh_seconds: float = 5.0, start: str = "dashboard") -> None:
        super().__init__()
        self.client = client
        self.clock: Clock = clock or utcnow
        self.refresh_seconds = refresh_seconds
        self.start = start

    def on_mount(self) -> None:
        """Open the first screen; quit when the terminal goes away."""
        self.switch_mode(self.start)
        stdin = sys.__stdin__
        if not self.is_headless and stdin is not None and stdin.isatty():
            self.set_interval(TERMINAL_CHECK_SECONDS, partial(self._check_terminal,
                                                              stdin.fileno()))

    def _check_terminal(self, fd: int) -> None:
        if terminal_gone(fd):  # else we would run on, unseen, with the demo's server
            self.exit()

    def action_help(self) -> None:
        """Show the keys of the current screen."""
        from tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Textual's commands plus one "Go to …" per registered screen."""
        yield from super().get_system_commands(screen)
        for entry in SCREENS:
            yield SystemCommand(f"Go to {entry.title}", f"Open the {entry.title} screen "
                                f"(key {entry.key})", partial(self.switch_mode, entry.name))
        yield SystemCommand("Help", "Keys of the current screen", self.action_help)
