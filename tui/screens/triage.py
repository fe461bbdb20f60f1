"""Triage keys shared by the alert queue and the group view: acknowledge, dismiss with a
reason, promote to a new case, add to an existing case. A screen using them says which
alerts the keys act on (:meth:`TriageScreen.targets`)."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.binding import Binding, BindingType

from tui.client.base import CaseQuery, Page
from tui.screens.base import PukaraScreen
from tui.screens.dialogs import ChoiceDialog, TextDialog

TRIAGE_BINDINGS: list[BindingType] = [
    Binding("a", "ack", "Ack"),
    Binding("d", "dismiss_alerts", "Dismiss"),
    Binding("p", "promote", "Promote"),
    Binding("c", "add_to_case", "To case"),
]


class TriageScreen(PukaraScreen):
    """A screen whose a/d/p/c keys triage :meth:`targets`."""

    BINDINGS: ClassVar[list[BindingType]] = []

    def targets(self) -> list[int]:
        """Alert ids the triage keys act on."""
        raise NotImplementedError

    def first_title(self, ids: list[int]) -> str:
        """A title to offer for a new case made from ``ids``."""
        return ""

    def after_triage(self) -> None:
        """Called after a triage action succeeded."""
        raise NotImplementedError

    def _done(self, message: str) -> Any:
        def finish(result: Any) -> None:
            count = len(result) if isinstance(result, list) else len(result["alert_ids"])
            number = "" if isinstance(result, list) else f" {result['number']}"
            self.notify(message.format(n=count, case=number), markup=False)
            self.after_triage()
        return finish

    def action_ack(self) -> None:
        """Acknowledge the target alerts."""
        if ids := self.targets():
            self.call(self.client.acknowledge, ids, then=self._done("{n} acknowledged"),
                      group="triage")

    def action_dismiss_alerts(self) -> None:
        """Dismiss the target alerts with a reason picked from a list."""
        ids = self.targets()
        if not ids:
            return
        choices = [(r, r) for r in self.client.dismiss_reasons()]

        def chosen(reason: str | None) -> None:
            if reason:
                self.call(self.client.dismiss, ids, reason,
                          then=self._done(f"{{n}} dismissed ({reason})"), group="triage")
        self.app.push_screen(ChoiceDialog(f"Dismiss {len(ids)} alert(s): reason", choices),
                             chosen)

    def action_promote(self) -> None:
        """Open a new case with the target alerts (title asked, first alert's offered)."""
        ids = self.targets()
        if not ids:
            return
        first = self.first_title(ids)

        def titled(title: str | None) -> None:
            if title is not None:
                self.call(self.client.promote, ids, title.strip() or None,
                          then=self._done("{n} promoted to new case{case}"), group="triage")
        self.app.push_screen(TextDialog(f"New case from {len(ids)} alert(s): title",
                                        value=first), titled)

    def action_add_to_case(self) -> None:
        """Merge the target alerts into an open case picked from the newest ones."""
        ids = self.targets()
        if ids:
            query = CaseQuery(sort="-updated_at", limit=30)
            self.call(self.client.case_page, query, then=lambda page: self._pick_case(ids, page),
                      group="cases")

    def _pick_case(self, ids: list[int], page: Page) -> None:
        if not page.rows:
            self.notify("no open case to add to; promote (p) opens one", severity="warning")
            return
        choices = [(c["number"], f"{c['number']}  {c['severity']:<8} {c['title']}")
                   for c in page.rows]

        def chosen(number: str | None) -> None:
            if number:
                self.call(self.client.add_to_case, ids, number,
                          then=self._done("{n} added to case{case}"), group="triage")
        self.app.push_screen(ChoiceDialog(f"Add {len(ids)} alert(s) to case", choices), chosen)
