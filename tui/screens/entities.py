"""Entities: the constituency with sector, contacts, open incidents and compliance."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Header, Static

from tui.screens.base import PukaraScreen
from tui.widgets.colours import severity, status
from tui.widgets.layout import set_columns, table_and_detail
from tui.widgets.safe import label_value, literal

COLUMNS = (("id", 10), ("name", 28), ("sector", 12), ("tier", 4), ("cases", 5),
           ("incidents", 9))


def _compliance(value: dict[str, Any] | None) -> Text:
    if not value:
        return Text("no reporting deadlines yet", style="dim")
    rate = "-" if value["met_rate"] is None else f"{value['met_rate']:.0%}"
    return Text(f"met {value['met']} · due {value['due']} · due soon {value['due-soon']} · "
                f"overdue {value['overdue']} · rate {rate}",
                style="bold red" if value["overdue"] else "")


def entity_detail(found: dict[str, Any]) -> Group:
    """Registry fields, contacts, compliance and open incidents of one entity."""
    head = label_value([
        ("entity", found["id"]), ("name", found["name"]), ("sector", found["sector"]),
        ("criticality", found["criticality"]), ("language", found["language"]),
        ("networks", ", ".join(found.get("cidrs") or []) or "-"),
        ("ASNs", ", ".join(str(a) for a in found.get("asns") or []) or "-"),
        ("domains", ", ".join(found.get("domains") or []) or "-"),
        ("open cases", found.get("open_cases", 0)),
        ("compliance", _compliance(found.get("compliance"))),
    ])
    contacts = Table("contact", "role", "e-mail", "phone", box=None, expand=True,
                     header_style="bold")
    for item in found.get("contacts") or []:
        contacts.add_row(literal(item.get("name") or "-"), literal(item.get("role")),
                         literal(item.get("email") or "-"), literal(item.get("phone") or "-"))
    incidents = Table("report", "sev", "status", "title", box=None, expand=True,
                      header_style="bold")
    for item in found.get("open_incidents") or []:
        incidents.add_row(literal(item["tracking_number"]), severity(item["severity"]),
                          status(item["status"]), literal(item["title"], limit=120))
    return Group(head, Text("\nContacts", style="bold underline"),
                 contacts if contacts.row_count else Text("none", style="dim"),
                 Text("\nOpen incidents", style="bold underline"),
                 incidents if incidents.row_count else Text("none", style="dim"))


class EntitiesScreen(PukaraScreen):
    """The constituency."""

    SUB_TITLE = "Entities"
    HELP = "The highlighted entity's details show beside (or below) the list."
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "reload", "Reload")]

    def compose(self) -> ComposeResult:
        """List and detail."""
        yield Header()
        yield from table_and_detail()
        yield Footer()

    def on_mount(self) -> None:
        """Columns and rows."""
        table = self.query_one("#table", DataTable)
        set_columns(table, COLUMNS)
        self.action_reload()

    def action_reload(self) -> None:
        """Fetch the constituency."""
        self.call(self.client.entities, then=self.show, group="list")

    def show(self, rows: list[dict[str, Any]]) -> None:
        """Fill the list."""
        table = self.query_one("#table", DataTable)
        table.clear()
        for row in rows:
            table.add_row(literal(row["id"]), literal(row["name"], limit=60),
                          literal(row["sector"]), str(row["criticality"]),
                          str(row["open_cases"]), str(row["open_incidents"]), key=row["id"])

    @on(DataTable.RowHighlighted, "#table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value:
            self.call(self.client.entity, str(event.row_key.value), then=self._detail,
                      group="detail")

    def _detail(self, found: dict[str, Any]) -> None:
        self.query_one("#detail-text", Static).update(entity_detail(found))
