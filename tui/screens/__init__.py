"""The screen table: the one place a screen is registered.

Adding a screen is one module plus one line here::

    ScreenEntry("playbooks", "Playbooks", "6", "tui.screens.playbooks:PlaybooksScreen"),

``name`` is the Textual mode, ``key`` switches to it from anywhere, ``target`` is
``module:Class`` of a :class:`tui.screens.base.PukaraScreen` subclass taking no arguments
(it reaches the data through ``self.client``). The screen's BINDINGS and HELP appear in the
help screen (``?``) and its name in the command palette (ctrl+p). Case-detail tabs have
their own table in :mod:`tui.screens.case_tabs`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui.screens.base import PukaraScreen


@dataclass(frozen=True)
class ScreenEntry:
    """One top-level screen: mode name, title, switch key, ``module:Class``."""

    name: str
    title: str
    key: str
    target: str

    def load(self) -> type[PukaraScreen]:
        """Import the screen class."""
        module, _, attribute = self.target.partition(":")
        loaded: type[PukaraScreen] = getattr(importlib.import_module(module), attribute)
        return loaded


SCREENS: tuple[ScreenEntry, ...] = (
    ScreenEntry("dashboard", "Dashboard", "1", "tui.screens.dashboard:DashboardScreen"),
    ScreenEntry("alerts", "Alerts", "2", "tui.screens.alerts:AlertsScreen"),
    ScreenEntry("cases", "Cases", "3", "tui.screens.cases:CasesScreen"),
    ScreenEntry("entities", "Entities", "4", "tui.screens.entities:EntitiesScreen"),
    ScreenEntry("intel", "Intel", "5", "tui.screens.intel:IntelScreen"),
    ScreenEntry("exercises", "Exercises", "6", "tui.screens.exercises:ExercisesScreen"),
)
