"""The server's copy of a page's journal: bounded, in order, each entry once."""

from __future__ import annotations

from servers.http.browser_journal import MAX_KEPT_ENTRIES, MAX_READ_ENTRIES, Journal


def test_the_oldest_entries_go_past_the_bound_and_a_late_reader_is_told_how_many_it_missed() -> None:
    journal = Journal()
    batch = 1000
    for start in range(0, MAX_KEPT_ENTRIES + 5 * batch, batch):
        journal.add(start, [["ws", "seq", "main", seq, seq] for seq in range(start, start + batch)])
    assert len(journal.entries) == MAX_KEPT_ENTRIES
    read = journal.read(0)
    assert read["missed"] == 5 * batch and read["from"] == 5 * batch
    assert len(read["entries"]) == MAX_READ_ENTRIES and read["entries"][0][3] == 5 * batch
    assert journal.read(journal.next)["entries"] == []
