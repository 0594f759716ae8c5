"""Recovery figures, fed events and times by hand."""

from rtplay.model.accounting import View
from rtplay.model.channels import ChannelStats
from rtplay.model.events import Connected, Disconnected, ResetReceived, RetryScheduled
from rtplay.model.recovery import MAX_OPEN_PER_TRANSPORT, MAX_RECORDS, RecoveryTracker


def arrive(tracker: RecoveryTracker, stats: ChannelStats, seq: int, now: float, published: int) -> None:
    new = stats.on_message(seq, 0.0, 1.0, now=now)
    tracker.on_arrival("ws", "main", seq, new, now, published, True, latency_ms=1000.0)  # sent before the reconnect


def test_detect_recover_and_cost_of_one_fault() -> None:
    stats = ChannelStats()
    for seq in range(1, 11):
        stats.on_message(seq, 0.0, 1.0, now=0.0)
    tracker = RecoveryTracker(origin=100.0)
    tracker.fault_started(1, "stall on ws", ["ws"], now=102.0, one_shot=False, published=10)
    tracker.on_event(Disconnected("ws", 103.5, "no pong"), cursor=10, published=15)
    tracker.on_event(RetryScheduled("ws", 103.5, 1.0, "exp"), cursor=10, published=15)
    tracker.fault_ended(1, now=106.0, published=11)
    tracker.on_event(Connected("ws", 106.2), cursor=10, published=40)
    arrive(tracker, stats, 12, 106.5, 41)  # 11 never comes
    for seq in range(13, 41):
        arrive(tracker, stats, seq, 106.6, 41)
    [entry] = tracker.to_json({"ws": ({"main": stats}, View(41))})
    assert entry["time_to_detect_s"] == 1.5
    assert entry["time_to_recover_s"] == 0.5
    assert entry["replayed"] == 29  # 12..40 arrived from the backlog the reconnect asked for
    assert (entry["lost"], entry["duplicates"], entry["overlaps"]) == (1, 0, [])


def test_a_later_fault_ends_the_earlier_ones_ownership() -> None:
    stats = ChannelStats()
    tracker = RecoveryTracker()
    views = {"sse": ({"main": stats}, View(4, recoverable=True))}
    tracker.fault_started(1, "drop on sse", ["sse"], now=1.0, one_shot=True, published=0)
    stats.on_message(2, 0.0, 1.0, now=0.0)  # 1 lost during the first fault
    tracker.fault_started(2, "drop on sse", ["sse"], now=2.0, one_shot=True, published=2)
    stats.on_message(4, 0.0, 1.0, now=0.0)  # 3 lost during the second
    tracker.on_event(Disconnected("sse", 2.5, "reset"), cursor=4, published=4)
    first, second = tracker.to_json(views)
    assert [first["lost"], second["lost"]] == [1, 1]
    assert first["time_to_detect_s"] is None and second["time_to_detect_s"] == 0.5


def test_overlapping_faults_name_each_other_and_resets_are_never_replayed() -> None:
    stats = ChannelStats()
    for seq in range(1, 21):
        stats.on_message(seq, 0.0, 1.0, now=0.0)
    tracker = RecoveryTracker()
    tracker.fault_started(1, "outage 5s on all", ["ws"], now=1.0, one_shot=False, published=20)
    tracker.fault_started(2, "crash 1s on all", ["ws"], now=2.0, one_shot=False, published=30)
    tracker.on_event(Disconnected("ws", 2.1, "refused"), cursor=20, published=31)
    tracker.fault_ended(2, now=3.0, published=40)
    tracker.fault_ended(1, now=6.0, published=75)
    tracker.on_event(Connected("ws", 6.2), cursor=20, published=80)
    stats.tracker.reset(70)
    tracker.on_event(ResetReceived("ws", 6.2, "main", 49, 70), cursor=69, published=80)
    for seq in range(70, 81):
        new = stats.on_message(seq, 0.0, 1.0, now=6.3)
        tracker.on_arrival("ws", "main", seq, new, 6.3, 80, True, latency_ms=500.0)
    outage, crash = tracker.to_json({"ws": ({"main": stats}, View(80))})
    assert (outage["overlaps"], crash["overlaps"]) == ([2], [1])
    assert outage["time_to_detect_s"] is None and outage["lost_to_reset"] == 0
    assert (crash["lost_to_reset"], crash["replayed"], crash["lost"]) == (49, 11, 0)
    assert crash["time_to_recover_s"] == 3.3  # from the crash's end to the first arrival


def test_records_stay_bounded() -> None:
    tracker = RecoveryTracker()
    for i in range(MAX_RECORDS + 50):
        tracker.fault_started(i, "drop", ["ws"], now=float(i), one_shot=True, published=0)
    assert len(tracker.records) == MAX_RECORDS
    assert len(tracker._open["ws"]) == MAX_OPEN_PER_TRANSPORT
