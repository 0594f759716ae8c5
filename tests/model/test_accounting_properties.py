"""Property tests: the accounting model and the recovery tracker against the reference oracle.

Hypothesis drives them with arbitrary arrival orders, duplicates, gaps, resets, reconnects
and overlapping faults; after every step every figure must equal the oracle's.
"""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from rtplay.model.accounting import View
from rtplay.model.channels import ChannelStats
from rtplay.model.events import Connected, Disconnected, Failed, ResetReceived
from rtplay.model.recovery import RecoveryTracker
from tests.model.oracle import Ev, OracleChannel, fault_records

#: Examples per machine in the suite: 300 runs of 20 steps find the defects the oracle was
#: written for within the first hundred (each step rebuilds the oracle's figures, so a
#: thousand took a minute and a half of a 4-minute suite). A deeper search before a change
#: to the accounting: ``RTPLAY_PROPERTY_EXAMPLES=5000 pytest tests/model``.
MAX_EXAMPLES = int(os.environ.get("RTPLAY_PROPERTY_EXAMPLES", "300"))

EXAMPLES = settings(
    max_examples=MAX_EXAMPLES, stateful_step_count=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
SEQ = st.integers(min_value=1, max_value=60)


class ChannelMachine(RuleBasedStateMachine):
    """One channel (reliable or not) fed arrivals, resets, downs and live lines."""

    @initialize(unreliable=st.booleans())
    def start(self, unreliable: bool) -> None:
        self.stats = ChannelStats.unreliable() if unreliable else ChannelStats()
        self.oracle = OracleChannel(unreliable=unreliable)
        self.published = 0

    @rule(n=st.integers(min_value=0, max_value=8))
    def publish(self, n: int) -> None:
        self.published += n

    @rule(seq=SEQ)
    def arrive(self, seq: int) -> None:
        seq = min(seq, max(1, self.published))
        self.published = max(self.published, seq)
        assert self.stats.on_message(seq, 0.0, 1.0, now=0.0) == self.oracle.see(seq)

    @rule(first=SEQ)
    def reset(self, first: int) -> None:
        if self.stats.live is None:
            assert self.stats.tracker.reset(first) == self.oracle.do_reset(first)
            self.published = max(self.published, first - 1)

    @rule(known=st.booleans())
    def went_down(self, known: bool) -> None:
        if self.stats.live is not None:
            published = self.published if known else None
            self.stats.live.went_down(published)
            self.oracle.went_down(published)

    @rule(first=SEQ)
    def live_from(self, first: int) -> None:
        if self.stats.live is not None:
            self.published = max(self.published, first - 1)
            self.stats.live.live_from(first)
            self.oracle.live_from(first)

    @invariant()
    def figures_match(self) -> None:
        t = self.stats.tracker
        assert t.missing == len(self.oracle.missing(1, t.highest))
        assert t.highest == self.oracle.highest
        # Only ``recoverable`` matters to a reliable channel, only ``final`` to an unreliable one.
        for flag in (True, False):
            recoverable, final = (True, flag) if self.oracle.unreliable else (flag, False)
            view = View(self.published, recoverable, final)
            assert self.stats.figures(view) == self.oracle.figures(self.published, recoverable, final)
            for lo, hi in ((1, self.published), (5, 20)):
                expect = self.oracle.lost_in(self.published, recoverable, final, lo, hi)
                assert self.stats.lost_in(view, lo, hi) == expect, (lo, hi, recoverable, final)


class SmallCapsChannelMachine(ChannelMachine):
    """The same with tiny gap caps, so writing gaps off (and filling them late) is exercised."""

    @initialize(unreliable=st.booleans())
    def start(self, unreliable: bool) -> None:
        module = sys.modules[ChannelStats().tracker.__module__]
        self._saved = module.MAX_TRACKED_GAPS
        module.MAX_TRACKED_GAPS = 2
        super().start(unreliable)

    def teardown(self) -> None:
        sys.modules[ChannelStats().tracker.__module__].MAX_TRACKED_GAPS = self._saved


class RecoveryMachine(RuleBasedStateMachine):
    """One transport's client events and faults, fed to the tracker and logged for the oracle."""

    def __init__(self) -> None:
        super().__init__()
        self.tracker = RecoveryTracker()
        self.stats = ChannelStats()
        self.oracle = OracleChannel()
        self.events: list[Ev] = []
        self.now = 0.0
        self.published = 0
        self.next_id = 1
        self.active: list[int] = []
        self.cursor = 0

    def log(self, kind: str, **kw: object) -> None:
        self.events.append(Ev(self.now, kind, self.published, **kw))  # type: ignore[arg-type]

    @rule(dt=st.sampled_from([0.0, 0.1, 0.5]), n=st.integers(min_value=0, max_value=5))
    def tick(self, dt: float, n: int) -> None:
        self.now += dt
        self.published += n

    @rule(one_shot=st.booleans())
    def fault_start(self, one_shot: bool) -> None:
        fid, self.next_id = self.next_id, self.next_id + 1
        self.tracker.fault_started(fid, f"f{fid}", ["ws"], self.now, one_shot, self.published)
        self.log("fault_start", fault=fid, one_shot=one_shot)
        if not one_shot:
            self.active.append(fid)

    @precondition(lambda self: bool(self.active))
    @rule(i=st.integers(min_value=0, max_value=5))
    def fault_end(self, i: int) -> None:
        fid = self.active.pop(i % len(self.active))
        self.tracker.fault_ended(fid, self.now, self.published)
        self.log("fault_end", fault=fid)

    @rule(kind=st.sampled_from(["down", "failed", "up"]))
    def connection(self, kind: str) -> None:
        event = {"down": Disconnected("ws", self.now, "x"), "failed": Failed("ws", self.now, "x"),
                 "up": Connected("ws", self.now)}[kind]
        self.tracker.on_event(event, self.cursor, self.published)
        self.log(kind, cursor=self.cursor)

    @rule(first=SEQ)
    def reset(self, first: int) -> None:
        first = min(first, self.published + 1)
        lost = self.stats.tracker.reset(first)
        self.oracle.do_reset(first)
        self.cursor = self.stats.tracker.highest
        self.tracker.on_event(ResetReceived("ws", self.now, "main", lost, first), self.cursor, self.published)
        self.log("reset", lost=lost)

    @rule(seq=SEQ, lat=st.sampled_from([0.0, 40.0, 700.0]))
    def arrive(self, seq: int, lat: float) -> None:
        if self.published == 0:
            return
        seq = min(seq, self.published)
        new = self.stats.on_message(seq, 0.0, 1.0, now=self.now)
        self.oracle.see(seq)
        self.cursor = self.stats.tracker.highest
        self.tracker.on_arrival("ws", "main", seq, new, self.now, self.published, True, lat)
        self.log("msg", seq=seq, new=new, lat=lat)

    @invariant()
    def records_match(self) -> None:
        recoverable = len(self.events) % 2 == 0  # both views, on alternate steps
        view = View(self.published, recoverable)
        got = {r["id"]: r for r in self.tracker.to_json({"ws": ({"main": self.stats}, view)})}
        expected = fault_records(self.events)
        assert set(got) == set(expected)
        for fid, exp in expected.items():
            rec = got[fid]
            hi = exp["owned_until"] if exp["owned_until"] is not None else self.published
            lost = self.oracle.lost_in(self.published, recoverable, False, exp["published_at_start"] + 1, hi)
            assert rec["lost"] == lost, fid
            assert rec["replayed"] == exp["replayed"], fid
            assert rec["lost_to_reset"] == exp["resets"].get("main", 0), fid
            assert rec["duplicates"] == exp["dups"].get("main", 0), fid
            detect = None if exp["detected"] is None else round(exp["detected"] - exp["start"], 3)
            assert rec["time_to_detect_s"] == detect, fid
            recover = None
            if exp["recovered"] is not None and exp["ended"] is not None:
                ref = max(exp["ended"], exp["detected"] if exp["detected"] is not None else exp["ended"])
                recover = round(max(0.0, exp["recovered"] - ref), 3)
            assert rec["time_to_recover_s"] == recover, fid
            assert all(v >= 0 for v in rec.values() if isinstance(v, int | float)), rec


ChannelMachine.TestCase.settings = EXAMPLES
SmallCapsChannelMachine.TestCase.settings = EXAMPLES
RecoveryMachine.TestCase.settings = EXAMPLES
test_channel_matches_the_oracle = ChannelMachine.TestCase
test_channel_with_written_off_gaps_matches_the_oracle = SmallCapsChannelMachine.TestCase
test_recovery_matches_the_oracle = RecoveryMachine.TestCase


def test_too_late_arrivals_are_neither_duplicates_nor_fills(monkeypatch: pytest.MonkeyPatch) -> None:
    module = sys.modules[ChannelStats().tracker.__module__]
    monkeypatch.setattr(module, "MAX_TRACKED_GAPS", 1)
    monkeypatch.setattr(module, "MAX_WRITTEN_OFF_GAPS", 1)
    stats = ChannelStats()
    for seq in (1, 3, 5, 7):  # gap 2 forgotten, 4 written off, 6 tracked
        stats.on_message(seq, 0.0, 1.0, now=0.0)
    t = stats.tracker
    assert (t.missing, t.written_off) == (3, 2)
    assert t.see(2) is False and (t.too_late, t.duplicates) == (1, 0)
    assert t.see(4) is True and t.missing == 2
