"""The server process's garbage-collector thresholds."""

from __future__ import annotations

import gc
import subprocess
import sys

from rtplay.runtime.gcpolicy import SERVER_THRESHOLDS, use_server_thresholds


def test_the_server_thresholds_replace_the_defaults_and_say_what_they_replaced() -> None:
    before = gc.get_threshold()
    try:
        assert use_server_thresholds() == before
        assert gc.get_threshold() == SERVER_THRESHOLDS
        young, middle, full = SERVER_THRESHOLDS
        assert young > 700 and middle >= 10 and full > 10  # rarer than CPython's 700/10/10
    finally:
        gc.set_threshold(*before)


def test_the_server_process_runs_with_them() -> None:
    """``python -m servers`` sets them before it serves (checked without serving: its event
    loop is replaced by a print of the thresholds in force when it would start)."""
    probe = (
        "import gc, sys\n"
        "sys.argv = ['servers', '--rate', '0']\n"
        "import servers.__main__ as m\n"
        "m.eventloop.run = lambda coro: (coro.close(), print(gc.get_threshold()))\n"
        "m.main()\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == str(SERVER_THRESHOLDS)


def test_the_start_up_heap_is_frozen_for_the_block_and_thawed_after() -> None:
    """What lives when the block opens is out of the collector's passes until it closes;
    then it is collectable again, so a process running many sessions frees each one's."""
    from rtplay.runtime.gcpolicy import start_up_heap_frozen

    start_up = [[] for _ in range(1000)]  # containers the collector would walk
    assert gc.get_freeze_count() == 0
    with start_up_heap_frozen():
        assert gc.get_freeze_count() >= len(start_up)
        made_during = [[]]
        assert any(made_during[0] is o for o in gc.get_objects())  # the run's own objects stay collectable
        assert not any(start_up[0] is o for o in gc.get_objects())
    assert gc.get_freeze_count() == 0
    assert any(start_up[0] is o for o in gc.get_objects())


def test_the_heap_is_thawed_when_the_block_fails() -> None:
    from rtplay.runtime.gcpolicy import start_up_heap_frozen

    try:
        with start_up_heap_frozen():
            raise KeyError("the run failed")
    except KeyError:
        pass
    assert gc.get_freeze_count() == 0


def test_a_wave_of_held_requests_churning_sets_off_no_young_collection() -> None:
    """A wave frees the answered requests' objects and their re-requests allocate as many
    again, a few hundred requests a turn: CPython's count (allocations less deallocations,
    never below 0) swings by that much each turn, which must not reach the threshold."""
    per_request, per_turn, turns = 60, 256, 40
    requests: list[list[list[int]] | None] = [[[] for _ in range(per_request)] for _ in range(per_turn * 4)]
    young: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 0:
            young.append(1)

    before = gc.get_threshold()
    gc.collect()  # the count starts at 0, as after the wave before
    use_server_thresholds()
    gc.callbacks.append(count)
    try:
        for turn in range(turns):
            batch = range((turn * per_turn) % len(requests), (turn * per_turn) % len(requests) + per_turn)
            for i in batch:  # a turn's answers: their requests' objects go
                requests[i] = None
            for i in batch:  # then their clients ask again
                requests[i] = [[] for _ in range(per_request)]
    finally:
        gc.callbacks.remove(count)
        gc.set_threshold(*before)
    assert young == []
