"""The work one frame costs, counted in Python function calls: deterministic, unlike time.

At 120x40 with every pane full of data, a frame once blocked the event loop for ~60 ms in a
real terminal, past the 50 ms of loop lag that flags the client as overloaded
(``rtplay.runtime.health.OVERLOAD_MS``): the header said "client overloaded" at 50 msg/s.
On this 2-core machine a frame's work runs at roughly 1 µs per Python call, so these
budgets keep a frame near 10-20 ms. Counting calls, not timing them, makes the test exact on
a busy machine (the figures in milliseconds come from ``benchmarks/perf.py``); a Textual
upgrade may move the counts a little, never by the factor these budgets guard against.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import FrameType
from typing import Any

from textual.pilot import Pilot

from rtplay.tui.app import RtplayApp
from rtplay.tui.backend import StaticBackend
from rtplay.tui.model import Dashboard
from tests.tui.demo import demo_dashboard, demo_report, later
from tests.tui.helpers import counter

SIZE = (120, 40)


@contextmanager
def python_calls() -> Iterator[list[int]]:
    """Count the Python functions called in this thread (asyncio's own machinery aside:
    how often the loop spins while a test waits depends on the machine)."""
    calls = [0]

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" and "asyncio" not in frame.f_code.co_filename:
            calls[0] += 1

    sys.setprofile(profile)
    try:
        yield calls
    finally:
        sys.setprofile(None)


@asynccontextmanager
async def demo_playground() -> AsyncIterator[tuple[RtplayApp, StaticBackend, Pilot[int]]]:
    """The demo panes at 120x40, their frame timer paused: the test draws the frames."""
    backend = StaticBackend(demo_dashboard(), demo_report())
    app = RtplayApp(backend=backend)
    async with app.run_test(size=SIZE) as pilot:
        assert app.main_screen.frame_timer is not None
        app.main_screen.frame_timer.pause()
        yield app, backend, pilot


async def frame_calls(frames: list[Dashboard], keys: list[str] | None = None) -> list[int]:
    """Calls of each frame drawn in turn (the frame pushed, then the repaint that follows),
    or of each key pressed, less those of a frame in which nothing changed (what waiting
    for the repaint costs). One frame is drawn first to warm up: the first frame after
    start-up also fills style caches, once."""
    out = []
    async with demo_playground() as (app, backend, pilot):
        screen = app.main_screen
        backend.frame = later(demo_dashboard(), samples=0, messages=1)
        screen.show_frame()
        await pilot.pause()
        with python_calls() as idle:
            screen.tick()
            await pilot.pause()
        for frame in frames:
            backend.frame = frame
            with python_calls() as calls:
                screen.tick()  # what the frame timer does ten times a second
                await pilot.pause()
            out.append(calls[0] - idle[0])
        for key in keys or []:
            with python_calls() as calls:
                await pilot.press(key)
                await pilot.pause()
            out.append(calls[0] - idle[0])
    return out


#: Calls a frame in which every chart scrolls and every counter moves may cost at 120x40
#: (the code that blocked the loop ~60 ms made ~49,000; now ~13,500).
FRAME_BUDGET = 20_000

#: Calls a frame in which only the counters and the header move may cost (was ~34,000;
#: now ~11,000).
COUNTERS_FRAME_BUDGET = 16_000

#: Calls a key that changes the selection may cost, restyling and repainting the panes
#: included (was ~220,000 when every pane restyled its ~30 component classes; now ~92,000).
KEY_BUDGET = 140_000


async def test_a_frame_full_of_new_data_stays_within_budget() -> None:
    start = demo_dashboard()
    # 1 s at 1000 msg/s: every chart gets new samples, every counter and figure moves.
    frames = [later(start, samples=n, messages=1000 * n) for n in (1, 2, 3, 4)]
    costs = await frame_calls(frames)
    assert max(costs) < FRAME_BUDGET, costs


async def test_a_frame_between_chart_samples_repaints_only_what_moved() -> None:
    start = demo_dashboard()
    frames = [later(start, samples=0, messages=100 * n) for n in (1, 2, 3, 4)]
    costs = await frame_calls(frames)
    assert max(costs) < COUNTERS_FRAME_BUDGET, costs


async def test_a_key_that_changes_the_selection_stays_within_budget() -> None:
    costs = await frame_calls([], keys=["1", "2", "0"])
    assert max(costs) < KEY_BUDGET, costs


async def test_each_frame_draws_half_the_panes_and_two_frames_draw_them_all() -> None:
    async with demo_playground() as (app, backend, pilot):
        screen = app.main_screen
        before = {name: counter(app, name, "deliv") for name in ("poll", "longpoll", "sse", "ws")}
        backend.frame = later(demo_dashboard(), samples=0, messages=7)
        screen.tick()
        await pilot.pause()
        moved = {name for name, n in before.items() if counter(app, name, "deliv") == n + 7}
        assert len(moved) == 2, moved  # panes 1-4 here: two of them on this frame
        screen.tick()
        await pilot.pause()
        assert all(counter(app, name, "deliv") == n + 7 for name, n in before.items())


async def test_a_view_covering_the_panes_spares_their_frames_and_they_catch_up_after() -> None:
    async with demo_playground() as (app, backend, pilot):
        screen = app.main_screen
        await pilot.press("c")  # the compare view
        before = counter(app, "ws", "deliv")
        backend.frame = later(demo_dashboard(), samples=1, messages=5)
        with python_calls() as calls:
            screen.tick()
        assert calls[0] < 500, calls  # laying the hidden panes out cost ~6,400
        await pilot.press("escape")
        await pilot.pause()
        assert counter(app, "ws", "deliv") == before + 5


async def test_the_playground_keeps_its_start_up_heap_out_of_full_collections() -> None:
    # Full collections walked the whole heap (textual, aiortc, aioquic...) every few
    # seconds and held the loop 30-260 ms each; what start-up built is frozen instead.
    assert gc.get_freeze_count() == 0
    app = RtplayApp(backend=StaticBackend(demo_dashboard(), demo_report()), freeze_heap=True)
    try:
        async with app.run_test(size=SIZE) as pilot:
            while app.started_in is None:
                await pilot.pause()
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()  # this process runs other tests: their garbage must stay collectable
