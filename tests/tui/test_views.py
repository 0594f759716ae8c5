"""Zoom, info, compare, help and the command palette, on fixed data (no sockets)."""

from __future__ import annotations

import io

from rich.console import Console
from textual.widgets import DataTable, TabbedContent

from rtplay.protocol.faults import Kind
from rtplay.tui.app import RtplayApp
from rtplay.tui.backend import StaticBackend
from rtplay.tui.compare import CompareScreen
from rtplay.tui.controls import FAULT_KEYS
from rtplay.tui.views import HelpScreen, InfoScreen, help_renderable
from tests.tui.demo import demo_dashboard, demo_report
from tests.tui.helpers import fault_keys, notice, pane_status, status_bar

SIZE = (120, 40)


def demo_app() -> RtplayApp:
    return RtplayApp(backend=StaticBackend(demo_dashboard(), demo_report()))


async def test_panes_show_the_frame() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert pane_status(app, "longpoll").startswith("◐ retrying in 2.4 s")
        assert pane_status(app, "sse").startswith("✖ failed: HTTP 503")
        assert "published 11900" in status_bar(app)
        assert "lag" not in status_bar(app)  # a static frame has no loop to measure


async def test_zoom_shows_the_selected_pane_alone_and_back() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5", "z")
        shown = [pane.transport for pane in app.main_screen.panes if pane.display]
        assert shown == ["wt"]
        assert app.main_screen.query_one("#pane-wt").size.width > 100
        await pilot.press("3")  # another pane while zoomed
        assert [pane.transport for pane in app.main_screen.panes if pane.display] == ["sse"]
        await pilot.press("z")
        assert all(pane.display for pane in app.main_screen.panes)


async def test_fault_keys_toggle_on_the_selection() -> None:
    backend = StaticBackend(demo_dashboard(), demo_report())
    app = RtplayApp(backend=backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4", "d", "0", "o", "O", "o")
        assert backend.commands == [
            ("toggle", (Kind.DROP, "ws", None)),
            ("toggle", (Kind.OUTAGE, "all", 5)),
            ("toggle", (Kind.OUTAGE, "all", 10)),
        ]
        assert "outage 10s" in fault_keys(app)


async def test_info_opens_on_the_selected_transport() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3", "i")
        assert isinstance(app.screen, InfoScreen)
        assert app.screen.query_one(TabbedContent).active == "info-sse"
        await pilot.press("right")
        assert app.screen.query_one(TabbedContent).active == "info-ws"
        await pilot.press("escape")
        assert app.screen is app.main_screen


async def test_compare_is_one_table_across_transports() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")
        assert isinstance(app.screen, CompareScreen)
        table = app.screen.query_one(DataTable)
        columns = [str(c.label) for c in table.columns.values()]
        assert columns[0] == "metric" and "wt datagram" in columns and "rtc unreliable" in columns
        row = table.get_row("lost")
        assert [str(cell) for cell in row[1:]] == ["96", "590", "2023", "0", "0", "2360", "0", "10"]
        fault = table.get_row("last-fault")
        assert str(fault[0]) == "last fault: outage 5s on all"
        replayed = table.get_row("recovery-replayed")
        assert str(replayed[4]) == "496"  # ws resumed with since= and got 496 replayed
        await pilot.press("escape")
        assert app.screen is app.main_screen


async def test_help_lists_every_fault_key() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        console = Console(width=108, file=io.StringIO(), record=True)
        console.print(help_renderable())
        text = console.export_text()
        for fk in FAULT_KEYS:
            assert f"{fk.kind.value}:" in text
        assert "ctrl+p" in text and "space" in text
        await pilot.press("escape")
        assert app.screen is app.main_screen


async def test_what_a_key_did_shows_in_the_fault_bar_not_as_a_toast_over_a_pane() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        for key, severity, said in (
            ("C", "information", "counters reset"),
            ("b", "information", "no retry policy here"),
            ("w", "warning", "no crowd: start the playground with --clients N"),
        ):
            await pilot.press(key)
            await pilot.pause()
            assert said in notice(app, severity), key
            assert not app.screen.query("Toast"), f"{key}: a toast covers a pane"


def test_help_lists_every_key_of_the_action_table() -> None:
    """A key the screen takes but the help leaves out is a key nobody finds (b, w, C were)."""
    from rtplay.tui.actions import ACTIONS

    console = Console(width=240, file=io.StringIO(), record=True)
    console.print(help_renderable(width=80))  # one column of keys: no row interleaves another
    text = " ".join(console.export_text().split())
    # One row each: "1-6", "↑ ↓ PgUp PgDn", a fault's "l L" and "+ -".
    combined = ("select(", "scroll_panes(", "page_panes(", "amount(", "step_amount(")
    missing = [a.keys for a in ACTIONS if not a.action.startswith(combined) and " ".join(a.help.split()) not in text]
    assert missing == []


async def test_the_palette_lists_every_action() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        titles = {command.title for command in app.get_system_commands(app.screen)}
        for fk in FAULT_KEYS:
            assert f"Toggle {fk.kind.value}" in titles
        expected = {
            "Select pane 1 (poll)",
            "Select pane 6 (rtc)",
            "Select all transports",
            "Clear all faults",
            "Publish faster",
            "Publish slower",
            "Pause / resume publishing",
            "Compare transports",
            "Transport info",
            "Zoom: one pane full-screen / grid",
            "Next amount of the armed fault",
        }
        assert expected <= titles


async def test_reorder_and_duplicate_have_keys_shown_where_they_take_no_row() -> None:
    """The datagram faults DESIGN lists had no key; on the fault keys' line they show where
    they fit on the rows the others need, and once armed or on; the help lists them always."""
    backend = StaticBackend(demo_dashboard(), demo_report())
    app = RtplayApp(backend=backend)
    async with app.run_test(size=(120, 40)) as pilot:
        assert "duplicate" not in fault_keys(app) and len(fault_keys(app).split("\n")) == 1  # no room
        await pilot.press("5", "u", "j", "J")
        assert backend.commands == [
            ("toggle", (Kind.DUPLICATE, "wt", 10)),
            ("toggle", (Kind.REORDER, "wt", 10)),
        ]
        assert "j reorder 20%" in fault_keys(app)  # armed: shown, with its next amount
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        console = Console(width=108, file=io.StringIO(), record=True)
        console.print(help_renderable())
        help_text = console.export_text()
        assert "j J" in help_text and "u U" in help_text and "reorder:" in help_text and "duplicate:" in help_text
    app = RtplayApp(backend=StaticBackend(demo_dashboard(), demo_report()))
    async with app.run_test(size=(80, 24)):
        keys = fault_keys(app)
        assert "j reorder 10%" in keys and "u duplicate 10%" in keys and len(keys.split("\n")) == 2
