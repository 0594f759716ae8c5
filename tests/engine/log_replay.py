"""Every figure of the JSON report, recomputed from ``--log-messages`` with the reference model.

The log is replayed into the per-seq oracle and every transport figure and every per-fault
figure must equal the report's (tests/cli/test_scenario.py does it for each shipped scenario,
in the same run that checks the scenario's expectations). The last-10-s latency window is the
one figure left out: its one-second slots follow the monotonic clock, which the log does not
carry.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rtplay.model.accounting import is_recoverable
from rtplay.model.channels import LatencyHistogram
from tests.model.oracle import Ev, OracleChannel, fault_records

UNRELIABLE = {("wt", "datagram"), ("rtc", "unreliable")}


class Replay:
    """One transport's figures rebuilt from its log lines."""

    def __init__(self, channels: list[str], name: str) -> None:
        self.channels = {ch: OracleChannel(unreliable=(name, ch) in UNRELIABLE) for ch in channels}
        self.primary = channels[0]
        self.latency = {ch: LatencyHistogram() for ch in channels}
        self.wire = dict.fromkeys(channels, 0)
        self.connects = 0
        self.connected = False
        self.down_since: float | None = None
        self.downtime = 0.0

    def feed(self, rec: dict[str, Any], cutoff: float | None, events: list[Ev]) -> None:
        ev, at, pub = rec["ev"], rec["at"], rec["pub"]
        clip = at if cutoff is None else min(at, cutoff)
        if ev == "msg":
            ch = self.channels[rec["ch"]]
            new = ch.see(rec["seq"])
            if new:
                self.latency[rec["ch"]].add(rec["lat"])
            self.wire[rec["ch"]] += rec["b"]
            events.append(Ev(at, "msg", pub, seq=rec["seq"], new=new, primary=rec["ch"] == self.primary,
                             channel=rec["ch"], lat=rec["lat"]))
        elif ev == "bytes":
            self.wire[rec["ch"]] += rec["b"]
        elif ev == "reset":
            lost = self.channels[rec["ch"]].do_reset(rec["first"])
            events.append(Ev(at, "reset", pub, lost=lost, channel=rec["ch"]))
        elif ev == "live":
            self.channels[rec["ch"]].live_from(rec["first"])
        elif ev == "up":
            if not self.connected:
                self.connects += 1
                if self.down_since is not None:
                    self.downtime += max(0.0, clip - self.down_since)
                    self.down_since = None
                self.connected = True
            since = rec.get("since")
            events.append(Ev(at, "up", pub, cursor=self.channels[self.primary].highest if since is None else since))
        elif ev == "down":
            self.connected = False
            if self.down_since is None:
                self.down_since = at
            for ch in self.channels.values():
                if ch.unreliable:
                    ch.went_down(pub)
            events.append(Ev(at, "down", pub))
        elif ev == "retry":
            events.append(Ev(at, "down", pub))
        elif ev == "failed":
            events.append(Ev(at, "failed", pub))


def recompute(lines: list[dict[str, Any]], report: dict[str, Any]) -> None:
    end = lines[-1]
    assert end["ev"] == "end"
    cutoff, published = end["cutoff"], end["published"]
    assert published == report["published"]
    replays = {}
    for name, entry in report["transports"].items():
        replays[name] = Replay(list(entry.get("channels") or ["main"]), name)
    events: dict[str, list[Ev]] = {name: [] for name in replays}
    for rec in lines[:-1]:
        if rec["ev"] == "start":  # the run's zero: no transport's event
            continue
        if rec["ev"] in ("fault_started", "fault_ended"):
            kind = "fault_start" if rec["ev"] == "fault_started" else "fault_end"
            for name in replays:
                if rec["scope"] in ("all", name) and (kind == "fault_start" or _started(events[name], rec["id"])):
                    events[name].append(Ev(rec["at"], kind, rec["published"], fault=rec["id"],
                                           one_shot=rec["one_shot"], acted=rec.get("acted")))
            continue
        replays[rec["tr"]].feed(rec, cutoff, events[rec["tr"]])
    for evs in events.values():  # in time order: a fault's line is written when the server
        evs.sort(key=lambda e: e.t)  # confirms it, its record starts when it was asked for
    for name, replay in replays.items():
        check_transport(name, replay, report["transports"][name], end, cutoff)
    check_faults(report, replays, events, end)


def _started(events: list[Ev], fault: int) -> bool:
    return any(e.kind == "fault_start" and e.fault == fault for e in events)


def view_of(name: str, replay: Replay, end: dict[str, Any]) -> tuple[int, bool, bool]:
    client = end["clients"][name]
    published = end["published"]
    if client["subscribed_until"] is not None:
        published = min(published, client["subscribed_until"])
    cursor = replay.channels[replay.primary].highest
    recoverable = is_recoverable(client["state"] == "failed", client["connected"], cursor, end["replay_from"])
    return published, recoverable, end["final"]


def check_transport(name: str, replay: Replay, entry: dict[str, Any], end: dict[str, Any], cutoff: float) -> None:
    published, recoverable, final = view_of(name, replay, end)
    channels = entry.get("channels") or {"main": entry}
    primary = channels[replay.primary]
    assert {k: entry[k] for k in primary} == primary, name  # the entry repeats its first channel
    for ch, figures in channels.items():
        oracle = replay.channels[ch]
        expected = oracle.figures(published, recoverable, final)
        assert {k: figures[k] for k in expected} == expected, (name, ch)
        assert figures["latency_ms"] == replay.latency[ch].summary(), (name, ch)
        delivered = len(oracle.delivered)
        bpm = round(replay.wire[ch] / delivered, 1) if delivered else None
        assert figures["wire_bytes_per_msg"] == bpm, (name, ch)
    assert entry["connects"] == replay.connects and entry["reconnects"] == max(0, replay.connects - 1), name
    downtime = replay.downtime
    if replay.down_since is not None:
        downtime += max(0.0, min(end["at"], cutoff if cutoff is not None else end["at"]) - replay.down_since)
    assert entry["downtime_s"] == pytest.approx(downtime, abs=0.002), name


def check_faults(report: dict[str, Any], replays: dict[str, Replay], events: dict[str, list[Ev]],
                 end: dict[str, Any]) -> None:
    expected = {name: fault_records(evs) for name, evs in events.items()}
    assert sorted((f["transport"], f["id"]) for f in report["faults"]) == sorted(
        (name, fid) for name, recs in expected.items() for fid in recs
    )
    for rec in report["faults"]:
        name = rec["transport"]
        exp, replay = expected[name][rec["id"]], replays[name]
        published, recoverable, final = view_of(name, replay, end)
        hi = exp["owned_until"] if exp["owned_until"] is not None else published
        per_channel = rec.get("channels") or {replay.primary: rec}
        for ch, figures in per_channel.items():
            lost = replay.channels[ch].lost_in(published, recoverable, final, exp["published_at_start"] + 1, hi)
            assert figures["lost"] == lost, (rec, ch)
            assert figures["lost_to_reset"] == exp["resets"].get(ch, 0), (rec, ch)
            assert figures["duplicates"] == exp["dups"].get(ch, 0), (rec, ch)
        assert rec["replayed"] == exp["replayed"], rec
        detect = None if exp["detected"] is None else exp["detected"] - exp["start"]
        assert (rec["time_to_detect_s"] is None) == (detect is None), rec
        if detect is not None:
            assert rec["time_to_detect_s"] == pytest.approx(max(0.0, detect), abs=0.0015), rec
        assert (rec["time_to_recover_s"] is None) == (exp["recovered"] is None or exp["ended"] is None), rec


def assert_recomputed(lines: list[dict[str, Any]], report: dict[str, Any]) -> None:
    """Every figure of ``report`` equals its recomputation from the log ``lines``, and the
    check can fail: a report with one figure off by one is caught."""
    assert sum(1 for rec in lines if rec["ev"] == "msg") > 0
    recompute(lines, report)
    for path in (("lost",), ("downtime_s",), ("latency_ms", "p99")):
        tampered = copy.deepcopy(report)
        entry = next(iter(tampered["transports"].values()))
        *parents, key = path
        for part in parents:
            entry = entry[part]
        entry[key] = (entry[key] or 0) + 1
        with pytest.raises(AssertionError):
            recompute(lines, tampered)
