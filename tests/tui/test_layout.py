"""The layout at common terminal sizes: every pane on the first screen, nothing cut."""

from __future__ import annotations

import pytest

from rtplay.tui.actions import FOOTER_KEEP
from rtplay.tui.app import RtplayApp
from rtplay.tui.backend import StaticBackend
from rtplay.tui.main import MIN_PANE_COLUMNS, MainScreen
from rtplay.tui.panes import PaneStatus, TransportPane
from tests.tui.demo import demo_dashboard, demo_report
from tests.tui.helpers import fault_bar, notice, shown, status_bar, unwrap, wait_for


def demo_app() -> RtplayApp:
    return RtplayApp(backend=StaticBackend(demo_dashboard(), demo_report()))


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (100, 30)])
async def test_every_pane_and_its_whole_status_is_on_the_first_screen(size: tuple[int, int]) -> None:
    app = demo_app()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, MainScreen)
        panes = list(screen.query(TransportPane))
        assert len(panes) == 6
        for pane in panes:
            region = pane.region
            assert region.height >= 5, pane.transport
            assert region.bottom <= size[1] - 1, f"{pane.transport} is below the fold at {size}"
            status = pane.query_one(PaneStatus)
            assert status.region.height == len(status.lines(status.size.width))  # no line hidden
        sse = unwrap(shown(screen.query_one("#pane-sse PaneStatus", PaneStatus)), 2)
        assert "failed: HTTP 503: EventSource does not reconnect" in sse
        assert "g restarts it" in sse  # a failed pane says how to start it again
        assert "…" not in sse
        assert "http://127.0.0.1:8765" in status_bar(app)  # the URL is never cut


@pytest.mark.parametrize("size", [(80, 18), (45, 24), (60, 24)])
async def test_arrow_and_page_keys_scroll_the_panes_when_they_do_not_fit(size: tuple[int, int]) -> None:
    """Too short or too narrow for every pane: the panes keep a readable size and scroll,
    rather than being cut to fit."""
    app = demo_app()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        grid = app.screen.query_one("#grid")
        assert grid.max_scroll_y > 0
        await pilot.press("pagedown")
        assert grid.scroll_y > 0
        await pilot.press("pageup")
        assert grid.scroll_y == 0
        await pilot.press("down")
        assert grid.scroll_y == 1
        await pilot.press("up")
        assert grid.scroll_y == 0
        for pane in app.screen.query(TransportPane):  # every pane as wide as a counter row needs
            assert pane.region.width >= MIN_PANE_COLUMNS, (pane.transport, pane.region.width)


async def test_the_footer_offers_the_fault_list_restart_and_palette_keys() -> None:
    async with demo_app().run_test(size=(80, 24)) as pilot:
        shown_actions = [b.binding.action for b in pilot.app.screen.active_bindings.values() if b.binding.show]
        for action in ("faults", "restart", "help"):
            assert action in shown_actions
        assert shown_actions.index("restart") < shown_actions.index("zoom")  # before a narrow footer ends


async def test_the_footer_and_help_number_only_the_chosen_transports() -> None:
    dashboard = demo_dashboard()
    two = type(dashboard)(panes=dashboard.panes[2:4], rate=dashboard.rate)
    app = RtplayApp(backend=StaticBackend(two))
    async with app.run_test(size=(120, 40)) as pilot:
        footer_keys = [b.binding.key_display for b in app.screen.active_bindings.values() if b.binding.show]
        assert "1-2" in [k for k in footer_keys]
        assert "1-6" not in footer_keys
        await pilot.press("question_mark")
        help_text = str(app.screen.query_one("#help-text").render())
        assert "1-6" not in help_text


async def test_notices_go_to_the_fault_bar_not_over_the_panes() -> None:
    app = demo_app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.press("5", "p")
        assert "toggled loss on wt" in notice(app, "information")
        assert "error 503 on sse" in fault_bar(app)
        assert not app.screen.query("Toast")


async def test_the_fault_list_clears_the_selected_fault_only() -> None:
    app = demo_app()
    backend = app.backend
    assert isinstance(backend, StaticBackend)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f")
        assert type(app.screen).__name__ == "FaultListScreen"
        table = app.screen.query_one("DataTable")
        assert table.row_count == 2
        assert [str(c) for c in table.get_row_at(1)] == ["4", "loss", "wt", "20%", "42 s"]
        await pilot.press("down", "enter")
        assert backend.commands[-1] == ("clear", 4)
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_a_zoomed_pane_takes_the_whole_width_and_its_full_form_on_a_small_terminal() -> None:
    app = demo_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5", "z")
        await pilot.pause()
        pane = app.screen.query_one("#pane-wt", TransportPane)
        assert pane.region.width == 80 and not pane.compact
        assert pane.query_one(".pane-chart").region.height >= 3  # a real chart again


@pytest.mark.parametrize("size", [(80, 24), (45, 24), (120, 40)])
async def test_the_footer_shows_whole_keys_the_most_needed_first(size: tuple[int, int]) -> None:
    """At 80 columns the footer was cut mid-key (``i inf``): it now leaves the least needed
    keys out whole, and the help lists them all."""
    app = demo_app()
    async with app.run_test(size=size) as pilot:

        def whole() -> bool:  # every key shown is on screen, whole (once the footer is laid out)
            keys = [key for key in app.screen.query("FooterKey") if key.display]
            return bool(keys) and all(k.region.right <= size[0] and k.region.width == k.render().cell_len for k in keys)

        await wait_for(pilot, whole, "every key the footer shows, whole")
        keys = list(app.screen.query("FooterKey"))
        shown = [key for key in keys if key.display]
        actions = [key.action for key in shown]
        assert actions[0] == "help" and "quit" in actions
        if size[0] >= 80:
            assert {"select(1)", "select(0)", "faults", "clear_faults", "rate(1)", "pause", "restart"} <= set(actions)
        if size[0] >= 120:
            assert len(shown) == len(keys)
        else:  # the keys left out are the least needed ones
            left_out = {key.action for key in keys if not key.display}
            assert left_out and all(FOOTER_KEEP.index(a) > FOOTER_KEEP.index(b) for a in left_out for b in actions)
