"""Recovery figures, fed events and times by hand."""

from rtplay.events import Connected, Disconnected, RetryScheduled
from rtplay.metrics import ChannelStats
from rtplay.recovery import MAX_OPEN_PER_TRANSPORT, MAX_RECORDS, RecoveryTracker


def test_detect_recover_and_cost_of_one_fault() -> None:
    stats = {"main": ChannelStats()}
    for seq in range(1, 11):
        stats["main"].on_message(seq, 0.0, 1.0, now=0.0)
    tracker = RecoveryTracker(origin=100.0)
    tracker.fault_started(1, "stall on ws", {"ws": stats}, now=102.0, one_shot=False)
    tracker.on_event(Disconnected("ws", 103.5, "no pong"), cursor=10, published=15)
    tracker.on_event(RetryScheduled("ws", 103.5, 1.0, "exp"), cursor=10, published=15)
    tracker.fault_ended(1, now=106.0)
    tracker.on_arrival("ws", now=105.0)  # before the end: not a recovery yet
    tracker.on_event(Connected("ws", 106.2), cursor=10, published=40)
    stats["main"].on_message(12, 0.0, 1.0, now=0.0)  # 11 never comes
    tracker.on_arrival("ws", now=106.5)
    tracker.close({"ws": stats})
    [entry] = tracker.to_json()
    assert entry["time_to_detect_s"] == 1.5
    assert entry["time_to_recover_s"] == 0.5
    assert entry["replayed"] == 30
    assert (entry["lost"], entry["duplicates"]) == (1, 0)


def test_a_later_fault_freezes_the_cost_of_the_earlier_one() -> None:
    stats = {"main": ChannelStats()}
    tracker = RecoveryTracker()
    tracker.fault_started(1, "drop on sse", {"sse": stats}, now=1.0, one_shot=True)
    stats["main"].on_message(2, 0.0, 1.0, now=0.0)  # 1 lost during the first fault
    tracker.fault_started(2, "drop on sse", {"sse": stats}, now=2.0, one_shot=True)
    stats["main"].on_message(4, 0.0, 1.0, now=0.0)  # 3 lost during the second
    tracker.close({"sse": stats})
    assert [r["lost"] for r in tracker.to_json()] == [1, 1]


def test_records_stay_bounded() -> None:
    stats = {"main": ChannelStats()}
    tracker = RecoveryTracker()
    for i in range(MAX_RECORDS + 50):
        tracker.fault_started(i, "drop", {"ws": stats}, now=float(i), one_shot=True)
    assert len(tracker.records) == MAX_RECORDS
    assert len(tracker._open["ws"]) == MAX_OPEN_PER_TRANSPORT
