"""Snapshots of the main grid, help and comparison views on fixed data (no session).

Regenerate after an intended change with ``pytest tests/tui --snapshot-update`` and review
the SVGs under ``__snapshots__/``.
"""

from __future__ import annotations

from typing import Any

from rtplay.tui.app import RtplayApp
from rtplay.tui.backend import StaticBackend
from tests.tui.demo import demo_dashboard, demo_report

SIZE = (120, 40)


def demo_app() -> RtplayApp:
    return RtplayApp(backend=StaticBackend(demo_dashboard(), demo_report()))


def test_main_grid(snap_compare: Any) -> None:
    assert snap_compare(demo_app(), terminal_size=SIZE)


def test_main_grid_small_terminal(snap_compare: Any) -> None:
    assert snap_compare(demo_app(), terminal_size=(80, 24))


def test_one_pane_full_screen(snap_compare: Any) -> None:
    assert snap_compare(demo_app(), press=["5", "z"], terminal_size=SIZE)


def test_help(snap_compare: Any) -> None:
    assert snap_compare(demo_app(), press=["question_mark"], terminal_size=SIZE)


def test_compare(snap_compare: Any) -> None:
    assert snap_compare(demo_app(), press=["c"], terminal_size=SIZE)


def test_info(snap_compare: Any) -> None:
    assert snap_compare(demo_app(), press=["3", "i"], terminal_size=SIZE)


def test_fault_list(snap_compare: Any) -> None:
    assert snap_compare(demo_app(), press=["f"], terminal_size=SIZE)


def test_main_grid_small_terminal_scrolled_selection(snap_compare: Any) -> None:
    # 80×20 cannot hold six compact panes: the grid scrolls to the selected one.
    assert snap_compare(demo_app(), press=["6"], terminal_size=(80, 20))
