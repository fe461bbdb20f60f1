"""What a case tab is: a container that renders one case view and may act on it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.binding import BindingType
from textual.containers import Vertical
from textual.widgets import DataTable

if TYPE_CHECKING:
    from tui.screens.case_detail import CaseDetailScreen


class CaseTab(Vertical):
    """One tab of the case detail; subclasses implement :meth:`show`."""

    HELP: ClassVar[str] = ""
    BINDINGS: ClassVar[list[BindingType]] = []

    def __init__(self) -> None:
        super().__init__(classes="case-tab")
        self.case: dict[str, Any] = {}

    @property
    def detail(self) -> CaseDetailScreen:
        """The case detail screen this tab lives on."""
        from tui.screens.case_detail import CaseDetailScreen

        screen = self.screen
        assert isinstance(screen, CaseDetailScreen)
        return screen

    def show(self, case: dict[str, Any]) -> None:
        """Render ``case`` (the full view from the client)."""
        raise NotImplementedError

    def row_key(self, table: DataTable[Any]) -> str | None:
        """The key of the highlighted row of ``table``."""
        if not table.row_count:
            return None
        value = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return None if value is None else str(value)


def table(*columns: str, table_id: str = "") -> DataTable[Any]:
    """A row-cursor table with the given columns."""
    made: DataTable[Any] = DataTable(cursor_type="row", zebra_stripes=True,
                                     classes="tab-table", id=table_id or None)
    for name in columns:
        made.add_column(name, key=name)
    return made
