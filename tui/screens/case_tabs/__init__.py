"""The case-detail tab table: the one place a case tab is registered.

Adding a tab is one module plus one line here::

    TabEntry("playbook", "Playbook", "tui.screens.case_tabs.playbook:PlaybookTab"),

``target`` is a :class:`tui.screens.case_tabs.base.CaseTab` subclass: it gets the whole
case view in ``show(case)`` each time the case is (re)loaded, lists its keys in BINDINGS
(active while it has focus, shown by ``?``), and acts through ``self.detail.call(...)``
followed by ``self.detail.reload()``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui.screens.case_tabs.base import CaseTab


@dataclass(frozen=True)
class TabEntry:
    """One case tab: id, title, ``module:Class``."""

    name: str
    title: str
    target: str

    def load(self) -> type[CaseTab]:
        """Import the tab class."""
        module, _, attribute = self.target.partition(":")
        loaded: type[CaseTab] = getattr(importlib.import_module(module), attribute)
        return loaded


CASE_TABS: tuple[TabEntry, ...] = (
    TabEntry("overview", "Overview", "tui.screens.case_tabs.overview:OverviewTab"),
    TabEntry("tasks", "Tasks", "tui.screens.case_tabs.tasks:TasksTab"),
    TabEntry("observables", "Observables", "tui.screens.case_tabs.observables:ObservablesTab"),
    TabEntry("timeline", "Timeline", "tui.screens.case_tabs.timeline:TimelineTab"),
    TabEntry("comments", "Comments", "tui.screens.case_tabs.comments:CommentsTab"),
    TabEntry("evidence", "Evidence", "tui.screens.case_tabs.evidence:EvidenceTab"),
    TabEntry("links", "Alerts & reports", "tui.screens.case_tabs.links:LinksTab"),
    TabEntry("playbook", "Playbook", "tui.screens.case_tabs.playbook:PlaybookTab"),
)
