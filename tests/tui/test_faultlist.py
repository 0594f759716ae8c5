"""The fault list (key ``f``): the active faults with scope, amount and time left; enter
clears the one under the cursor while the others stay on; esc closes."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Static

from rtplay.tui.faultlist import COLUMNS, FaultListScreen, row_cells
from rtplay.tui.model import FaultRow

DELAY = FaultRow(1, "delay", "sse", "200ms", 4.4)
ERROR = FaultRow(2, "error", "all", "503", None)
STALL = FaultRow(3, "stall", "ws", "", 12.0)


class Host(App[None]):
    """An app showing the fault list over an empty screen, with faults the test sets."""

    def __init__(self, active: list[FaultRow]) -> None:
        super().__init__()
        self.active = active
        self.cleared: list[int] = []
        self.said: list[tuple[str, str]] = []

    def compose(self) -> ComposeResult:
        yield Static("main")

    def on_mount(self) -> None:
        self.push_screen(FaultListScreen(lambda: tuple(self.active), self.clear, self.say))

    async def clear(self, fault_id: int) -> None:
        self.cleared.append(fault_id)
        self.active = [row for row in self.active if row.id != fault_id]

    def say(self, text: str, severity: str) -> None:
        self.said.append((text, severity))


def table(app: Host) -> DataTable[str]:
    return app.screen.query_one(DataTable)


def shown_rows(app: Host) -> list[list[str]]:
    t = table(app)
    return [[str(cell) for cell in t.get_row_at(i)] for i in range(t.row_count)]


def test_each_fault_reads_as_its_cells() -> None:
    assert row_cells(DELAY) == ("1", "delay", "sse", "200ms", "4 s")
    assert row_cells(ERROR) == ("2", "error", "all", "503", "until cleared")
    assert row_cells(STALL) == ("3", "stall", "ws", "-", "12 s")


async def test_the_list_shows_every_active_fault_in_columns() -> None:
    app = Host([DELAY, ERROR, STALL])
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, FaultListScreen)
        assert [str(c.label) for c in table(app).columns.values()] == list(COLUMNS)
        assert shown_rows(app) == [list(row_cells(r)) for r in (DELAY, ERROR, STALL)]
        assert not app.screen.query_one("#fault-list-empty", Static).display


async def test_enter_clears_the_fault_under_the_cursor_and_the_others_stay() -> None:
    app = Host([DELAY, ERROR, STALL])
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.cleared == [ERROR.id]
        assert [row[0] for row in shown_rows(app)] == ["1", "3"]
        await pilot.press("x")  # the other clearing key, on the row the cursor is on now
        await pilot.pause()
        assert len(app.cleared) == 2 and app.cleared[1] in (DELAY.id, STALL.id)
        assert len(shown_rows(app)) == 1


async def test_the_cursor_stays_on_its_fault_when_another_one_ends() -> None:
    app = Host([DELAY, ERROR, STALL])
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("down", "down")  # on STALL
        app.active = [ERROR, STALL]  # DELAY ran out by itself
        screen = app.screen
        assert isinstance(screen, FaultListScreen)
        screen.refresh_rows()
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert app.cleared == [STALL.id]


async def test_with_no_fault_the_list_says_so_and_clearing_warns() -> None:
    app = Host([])
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        empty = app.screen.query_one("#fault-list-empty", Static)
        assert empty.display and "No fault is active" in str(empty.render())
        await pilot.press("x")
        await pilot.pause()
        assert app.cleared == []
        assert app.said == [("no active fault to clear", "warning")]


async def test_faults_that_start_while_it_is_open_appear_and_esc_closes_it() -> None:
    app = Host([])
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.active = [DELAY]
        screen = app.screen
        assert isinstance(screen, FaultListScreen)
        screen.refresh_rows()
        await pilot.pause()
        assert shown_rows(app) == [list(row_cells(DELAY))]
        assert not screen.query_one("#fault-list-empty", Static).display
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, FaultListScreen)
