"""A recorded run played back: at its end, exactly its report's figures; any moment, the same
figures however the player got there."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from rtplay.clients import CLIENT_CLASSES
from rtplay.report.playback import MAX_SPEED, Layout, Playback, PlaybackError, PlayClock
from tests.report.conftest import recorded

LAYOUTS = {name: Layout(cls.channels, cls.unreliable_channels) for name, cls in CLIENT_CLASSES.items()}

#: Left out of the comparison: the last-10-s window's one-second slots follow the monotonic
#: clock, which the log does not carry; a server's cut of a too-slow client is not logged.
NOT_IN_THE_LOG = ("recent_latency_ms", "cut_too_slow", "failed_reason")


def comparable(entry: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in entry.items() if k not in NOT_IN_THE_LOG}
    if "channels" in out:
        out["channels"] = {ch: comparable(c) for ch, c in out["channels"].items()}
    return out


def played_to_the_end(records: list[dict[str, Any]]) -> dict[str, Any]:
    playback = Playback(records, LAYOUTS)
    playback.advance_to(playback.end_at)
    assert playback.at_end
    return {name: comparable(entry) for name, entry in playback.report().items()}


def test_playing_a_recorded_run_to_its_end_gives_exactly_its_reports_figures(tmp_path: Path) -> None:
    run = recorded("run30", tmp_path)
    expected = {name: comparable(entry) for name, entry in run.report["transports"].items()}
    assert played_to_the_end(run.records) == expected
    # The comparison can fail: one arrival less changes the figures.
    dropped = [r for r in run.records if not (r["ev"] == "msg" and r["tr"] == "ws" and r["seq"] == 100)]
    assert played_to_the_end(dropped)["ws"] != expected["ws"]


def test_seeking_back_then_forward_gives_the_same_figures(tmp_path: Path) -> None:
    run = recorded("run30", tmp_path)
    playback = Playback(run.records, LAYOUTS)
    playback.advance_to(16.0)  # inside the outage
    during = copy.deepcopy(playback.report())
    playback.advance_to(playback.end_at)
    at_end = copy.deepcopy(playback.report())
    playback.rewound()
    playback.advance_to(16.0)
    assert playback.report() == during
    playback.advance_to(playback.end_at)
    assert playback.report() == at_end
    with pytest.raises(PlaybackError, match="forward only"):
        playback.advance_to(3.0)


def test_the_faults_of_the_recording_are_where_the_player_jumps(tmp_path: Path) -> None:
    playback = Playback(recorded("run30", tmp_path).records, LAYOUTS)
    starts = [(f.text, round(f.start)) for f in playback.faults]
    assert starts == [("drop on all", 6), ("outage 4s on all", 14), ("loss 20% on all", 20)]
    first = playback.next_fault_after(0.0)
    assert first is not None and playback.next_fault_after(first.start) is playback.faults[1]
    assert [f.text for f in playback.active_faults(16.0)] == ["outage 4s on all"]
    assert playback.active_faults(first.start) == []  # a drop acts at one instant


def test_a_log_cut_short_or_foreign_is_refused_with_the_reason(tmp_path: Path) -> None:
    records = recorded("run30", tmp_path).records
    with pytest.raises(PlaybackError, match="no 'end' record"):
        Playback(records[:-1], LAYOUTS)
    stray = [{"ev": "up", "tr": "carrier-pigeon", "at": 0.5, "conn": 1, "pub": 0}, records[-1]]
    with pytest.raises(PlaybackError, match="carrier-pigeon"):
        Playback(stray, LAYOUTS).advance_to(1.0)


def test_the_play_clock_pauses_seeks_and_changes_speed_on_the_clock_it_is_given() -> None:
    clock = PlayClock(length=30.0, now=100.0)
    assert clock.position(102.0) == 2.0
    assert clock.toggle_pause(102.0) and clock.position(110.0) == 2.0
    assert not clock.toggle_pause(110.0) and clock.position(111.0) == 3.0
    assert clock.scale(2, 111.0) == 2.0 and clock.position(112.0) == 5.0
    assert clock.seek(-4.0, 112.0) == 0.0 and clock.seek(99.0, 112.0) == 30.0
    assert clock.position(200.0) == 30.0  # stops at the end
    for _ in range(20):
        clock.scale(2, 200.0)
    assert clock.speed == MAX_SPEED


def rec(ev: str, at: float, pub: int, **fields: Any) -> dict[str, Any]:
    return {"ev": ev, "tr": "ws", "at": at, "conn": 1, "pub": pub, **fields}


def end(published: int, state: str, connected: bool, subscribed_until: int | None) -> dict[str, Any]:
    client = {"state": state, "connected": connected, "subscribed_until": subscribed_until}
    return {"ev": "end", "published": published, "replay_from": 1, "final": True, "at": 9.0,
            "clients": {"ws": client}, "cutoff": 8.5}


def test_a_client_that_failed_for_good_has_lost_what_it_never_got() -> None:
    records = [rec("up", 0.1, 0), *(rec("msg", 0.2 * s, s, ch="main", seq=s, lat=1.0, b=80) for s in (1, 2, 3)),
               rec("failed", 2.0, 5), end(8, "failed", False, 5)]
    playback = Playback(records, LAYOUTS)
    playback.advance_to(1.0)
    assert playback.report()["ws"]["state"] == "open" and playback.report()["ws"]["delivered"] == 3
    playback.advance_to(playback.end_at)
    ws = playback.report()["ws"]
    # Subscribed until seq 5 when it failed: 4 and 5 can never arrive; 6-8 were never its to get.
    assert (ws["state"], ws["delivered"], ws["lost"], ws["pending"]) == ("failed", 3, 2, 0)
    assert ws["downtime_s"] == 6.5  # from the failure to the cutoff, never past it
    assert ws["wire_bytes_per_msg"] == 80.0


def test_a_counter_reset_in_the_recording_zeroes_the_figures_from_there() -> None:
    records = [rec("up", 0.1, 0), *(rec("msg", 0.2 * s, s, ch="main", seq=s, lat=1.0, b=0) for s in (1, 2, 3)),
               rec("restart", 1.0, 3), rec("msg", 1.2, 4, ch="main", seq=4, lat=2.0, b=0),
               end(4, "open", True, None)]
    playback = Playback(records, LAYOUTS)
    playback.advance_to(playback.end_at)
    ws = playback.report()["ws"]
    assert (ws["delivered"], ws["lost"], ws["connects"], ws["latency_ms"]["max"]) == (1, 0, 1, 2.0)
