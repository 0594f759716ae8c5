"""A target's figures: measured with a seq or a time, unknown (never 0) without."""

from __future__ import annotations

from rtplay.model.identity import Identified, Unreadable
from rtplay.model.resumption import Outcome, Reconnect, judge, refused
from rtplay.model.target_stats import TargetStats


def test_without_a_seq_loss_is_unknown_not_zero() -> None:
    stats = TargetStats(has_seq=False, has_time=False)
    for i in range(3):
        stats.on_message(Identified(None, None), 1000.0, now=float(i))
    report = stats.report("ws", now=3.0)
    assert report["messages"] == 3
    for figure in ("delivered", "lost", "duplicates", "out_of_order", "latency_ms", "pending"):
        assert report[figure] is None, figure
    assert report["unknown"]["lost"] == "--seq ws=json:PATH"  # type: ignore[index]
    assert report["unknown"]["latency_ms"] == "--time ws=json:PATH[:ms|s|iso]"  # type: ignore[index]
    assert report["max_gap_s"] == 1.0
    assert stats.lost_between(1, 10) is None


def test_with_a_seq_the_accounting_model_applies_from_the_targets_first_seq() -> None:
    stats = TargetStats(has_seq=True, has_time=False)
    for seq in (1000, 1001, 1004, 1002, 1004):  # starts mid-stream: 1..999 are not lost
        stats.on_message(Identified(seq, None), 0.0, now=0.0)
    report = stats.report("sse", now=1.0)
    assert (report["delivered"], report["lost"], report["duplicates"], report["out_of_order"]) == (4, 1, 1, 1)
    assert report["latency_ms"] is None and "latency_ms" in report["unknown"]  # type: ignore[operator]
    assert stats.lost_between(1003, 1004) == 1


def test_with_a_time_latency_is_measured() -> None:
    stats = TargetStats(has_seq=False, has_time=True)
    stats.on_message(Identified(None, 1000.0), 1002.5, now=0.0)
    latency = stats.report("sse", now=0.0)["latency_ms"]
    assert isinstance(latency, dict) and abs(latency["max"] - 2.5) < 1e-9


def test_unreadable_messages_are_counted_as_arrivals() -> None:
    stats = TargetStats(has_seq=True, has_time=False)
    stats.on_unreadable(Unreadable.NOT_JSON, 0.0)
    stats.on_unreadable(Unreadable.OVERSIZED, 0.5)
    report = stats.report("ws", now=1.0)
    assert report["messages"] == 2
    assert report["unreadable"] == {"not_json": 1, "no_seq": 0, "no_time": 0, "oversized": 1}
    assert report["delivered"] == 0


def test_what_the_target_did_with_a_reconnect() -> None:
    def outcome(asked: str | None, before: int | None, first: int | None, lowest: int = 1) -> Outcome:
        return judge(Reconnect(asked, before, lowest, first)).outcome

    assert outcome("Last-Event-ID: 10", 10, 11) is Outcome.RESUMED
    assert outcome("Last-Event-ID: 10", 10, 1) is Outcome.REPLAYED_FROM_START
    assert outcome("since=10", 10, 6) is Outcome.REPLAYED
    assert outcome(None, 10, 25) is Outcome.SKIPPED
    assert outcome(None, None, None) is Outcome.UNKNOWN
    assert outcome("Last-Event-ID: 10", 10, None) is Outcome.UNKNOWN
    skipped = judge(Reconnect(None, 10, 1, 25))
    assert skipped.missed == 14 and "14 lost" in skipped.words
    ignored = judge(Reconnect("Last-Event-ID: 10", 10, 1, 25))
    assert ignored.words.startswith("ignored Last-Event-ID: 10")
    replayed = judge(Reconnect("Last-Event-ID: 10", 10, 1, 1))
    assert replayed.repeated == 10 and "ignored" in replayed.words
    assert refused("HTTP 503").words == "refused the reconnect with HTTP 503"
