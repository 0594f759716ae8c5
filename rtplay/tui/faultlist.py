"""The fault list (key ``f``): every active fault with its scope, amount and time left, and a
key to clear the one under the cursor while the others stay on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from rtplay.tui.model import FaultRow

#: How often the list follows the session (time left counts down; faults end by themselves).
REFRESH_S = 0.5

COLUMNS = ("id", "fault", "scope", "amount", "time left")


def row_cells(row: FaultRow) -> tuple[str, str, str, str, str]:
    """The table cells of one fault."""
    left = "until cleared" if row.left_s is None else f"{row.left_s:.0f} s"
    return (str(row.id), row.kind, row.scope, row.amount or "-", left)


class FaultListScreen(ModalScreen[None]):
    """Active faults; ``enter``/``x``/``delete`` clears the selected one, ``esc`` closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter,x,delete", "clear_selected", "clear this fault", key_display="enter"),
        Binding("escape,f,q", "dismiss", "close", key_display="esc"),
    ]

    def __init__(
        self,
        rows: Callable[[], tuple[FaultRow, ...]],
        clear: Callable[[int], Awaitable[None]],
        say: Callable[[str, str], None],
    ) -> None:
        """``rows``: the faults active now; ``clear``: end one by id; ``say``: a notice."""
        super().__init__()
        self._rows = rows
        self._clear = clear
        self._say = say
        self._shown: tuple[FaultRow, ...] | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="fault-list-box") as box:
            box.border_title = "active faults"
            box.border_subtitle = "enter clears the selected fault · esc closes"
            yield DataTable(id="fault-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="fault-list-empty")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.refresh_rows()
        self.set_interval(REFRESH_S, self.refresh_rows)

    @property
    def rows(self) -> tuple[FaultRow, ...]:
        """The faults active now, as the main screen last saw them."""
        return self._rows()

    def refresh_rows(self) -> None:
        """Show the current faults, keeping the cursor on the same fault when it is still on."""
        rows = self.rows
        if rows == self._shown:
            return
        self._shown = rows
        table = self.query_one(DataTable)
        selected = self._selected_id()
        table.clear()
        for row in rows:
            table.add_row(*row_cells(row), key=str(row.id))
        ids = [row.id for row in rows]
        if selected in ids:
            table.move_cursor(row=ids.index(selected))
        empty = self.query_one("#fault-list-empty", Static)
        empty.update("" if rows else "No fault is active. Fault keys (d s l e o k p t n) start one.")
        empty.display = not rows

    def _selected_id(self) -> int | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return int(key) if key is not None else None

    async def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """``enter`` on a row (the table takes the key itself)."""
        event.stop()
        await self.action_clear_selected()

    async def action_clear_selected(self) -> None:
        """Clear the fault under the cursor; the others stay on."""
        fault_id = self._selected_id()
        if fault_id is None:
            self._say("no active fault to clear", "warning")
            return
        await self._clear(fault_id)
        self.refresh_rows()
