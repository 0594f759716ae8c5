"""The browser's figures from its page's journal, by rtplay's one accounting model."""

from __future__ import annotations

from rtplay.model.accounting import View
from rtplay.model.browser_journal import BrowserAccounts
from rtplay.model.channels import ChannelStats

CHANNELS = {"wt": ("stream", "datagram"), "sse": ("main",)}
LIVE_ONLY = {"wt": ("datagram",)}


def test_a_live_only_channel_is_split_up_and_down_exactly_as_rtplays_own() -> None:
    # Datagrams 1-40 with every fifth lost, a crash after 40 (published 50 by then), back live from 80.
    arrived = [seq for seq in range(1, 41) if seq % 5]
    accounts = BrowserAccounts(CHANNELS, LIVE_ONLY)
    journal: list[list[object]] = [["wt", "up", 1.0], ["wt", "live", "datagram", 1]]
    journal += [["wt", "seq", "datagram", seq, seq] for seq in arrived]
    journal += [["wt", "down", 2.0, 50], ["wt", "up", 3.0], ["wt", "live", "datagram", 80],
                ["wt", "seq", "datagram", 80, 100]]
    accounts.feed(journal)
    # rtplay's own client, making the same calls (rtplay.clients.base).
    ours = ChannelStats.unreliable()
    assert ours.live is not None
    ours.live.live_from(1)
    for seq in arrived:
        ours.on_message(seq, 0.0, 1.0, 0.0)
    ours.live.went_down(50)
    ours.live.live_from(80)
    for seq in range(80, 101):
        ours.on_message(seq, 0.0, 1.0, 0.0)
    view = View(published=100, final=True)
    theirs = accounts.client("wt").figures(100, final=True)["datagram"]
    assert theirs == ours.figures(view)
    # 8 holes plus 41-50 published while the session stood; 51-79 while it was down.
    assert (theirs["lost_while_connected"], theirs["lost_while_down"]) == (18, 29)


def test_an_eventsource_that_gave_up_loses_its_tail_up_to_then() -> None:
    accounts = BrowserAccounts(CHANNELS, LIVE_ONLY)
    accounts.feed([["sse", "start", 10], ["sse", "up", 1.0], ["sse", "seq", "main", 11, 40],
                   ["sse", "failed", 2.0, 86]])
    figures = accounts.client("sse").figures(published=300, final=True)["main"]
    assert (figures["delivered"], figures["lost"], figures["pending"]) == (30, 46, 0)


def test_a_live_client_has_its_tail_pending_and_a_reset_counted_as_reset() -> None:
    accounts = BrowserAccounts(CHANNELS, LIVE_ONLY)
    accounts.feed([["sse", "up", 1.0], ["sse", "seq", "main", 1, 5], ["sse", "down", 2.0, 5],
                   ["sse", "reset", "main", 20], ["sse", "up", 3.0], ["sse", "seq", "main", 20, 30],
                   ["sse", "seq", "main", 25, 25]])
    figures = accounts.client("sse").figures(published=33)["main"]
    assert figures == {"delivered": 16, "pending": 3, "lost": 0, "lost_to_reset": 14, "duplicates": 1,
                       "out_of_order": 0}


def test_entries_that_never_reached_rtplay_are_counted() -> None:
    accounts = BrowserAccounts(CHANNELS, LIVE_ONLY)
    accounts.feed([["*", "gap", 12]])
    accounts.missed(3)
    assert accounts.gaps == 15


def test_a_run_counts_as_its_seqs_one_by_one() -> None:
    from rtplay.model.accounting import SeqTracker

    runs = [(1, 5), (8, 12), (6, 7), (10, 14), (30, 30)]
    whole, single = SeqTracker(), SeqTracker()
    for lo, hi in runs:
        whole.see_run(lo, hi)
        for seq in range(lo, hi + 1):
            single.see(seq)
    assert (whole.delivered, whole.duplicates, whole.out_of_order, whole.missing, whole.highest, whole.first_seen) \
        == (single.delivered, single.duplicates, single.out_of_order, single.missing, single.highest, single.first_seen)
    assert (whole.delivered, whole.duplicates, whole.missing) == (15, 3, 15)
