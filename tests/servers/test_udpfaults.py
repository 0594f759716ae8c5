import pytest

from rtplay.protocol.udpfaults import DatagramShaper


def test_shaper_drops_duplicates_and_reorders() -> None:
    shaper = DatagramShaper(hold_s=0.02)
    assert shaper.push(b"a", (True, False, False), now=0.0) == []
    assert shaper.push(b"b", (False, False, True), now=0.0) == [b"b", b"b"]
    assert shaper.push(b"c", (False, True, False), now=0.0) == []  # held
    assert shaper.deadline == pytest.approx(0.02)
    assert shaper.push(b"d", (False, False, False), now=0.01) == [b"d", b"c"]  # c after d
    assert shaper.push(b"e", (False, True, False), now=1.0) == []
    assert shaper.due(1.01) == []
    assert shaper.due(1.02) == [b"e"]  # an idle path releases it after the hold
    assert shaper.deadline is None
    assert (shaper.dropped, shaper.duplicated, shaper.reordered) == (1, 1, 2)


def test_at_most_one_datagram_is_held() -> None:
    shaper: DatagramShaper[bytes] = DatagramShaper()
    assert shaper.push(b"a", (False, True, False), now=0.0) == []
    assert shaper.push(b"b", (False, True, False), now=0.0) == [b"b", b"a"]
    assert shaper.push(b"c", (False, True, True), now=0.0) == [b"c"]  # one copy now, one held
    assert shaper.due(1.0) == [b"c"] and shaper.due(2.0) == []


async def test_the_quic_path_lets_datagrams_through_and_releases_a_held_one_in_order() -> None:
    from servers.quic.udp import UNHARMED, _ImpairedPath

    fates = [(False, True, False), UNHARMED, UNHARMED]  # the reorder fault ends after "a"
    out: list[bytes] = []
    path = _ImpairedPath(lambda: fates.pop(0), lambda data, addr: out.append(data))
    path(b"a", None)  # held
    path(b"b", None)  # no fault now, but "a" is still held: it follows "b"
    path(b"c", None)  # nothing held: straight through
    assert out == [b"b", b"a", b"c"]
    path.cancel()
