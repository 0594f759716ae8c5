"""Item 8: never-finished WebRTC offers cannot hold every peer slot against real clients."""

from __future__ import annotations

import httpx
import pytest

import servers.rtc.peer as rtc
from servers.rtc.admission import Admission, NoRoom
from tests.conftest import rtc_server, running, wait_until
from tests.servers.test_rtc import body, fast_client, open_client


def test_at_the_cap_the_oldest_half_open_peer_old_enough_is_evicted() -> None:
    admission = Admission(share=10, min_age_s=1.0)
    for i, key in enumerate("abc"):
        admission.opened(key, "10.0.0.1", float(i))
    assert admission.make_room("10.0.0.2", live=3, max_peers=3, now=2.5) == ["a"]
    with pytest.raises(NoRoom):  # b (1.5 s old) could go, c (0.5 s) not: two are needed
        admission.make_room("10.0.0.2", live=4, max_peers=3, now=2.5)
    assert admission.half_open == 2


def test_established_peers_are_never_evicted() -> None:
    admission = Admission(share=10, min_age_s=0.0)
    with pytest.raises(NoRoom, match="too many WebRTC peers"):
        admission.make_room("x", live=3, max_peers=3, now=100.0)  # all three established
    admission.opened("a", "x", 0.0)
    admission.done("a")  # its channels opened
    with pytest.raises(NoRoom):
        admission.make_room("x", live=3, max_peers=3, now=100.0)


def test_a_source_past_its_share_evicts_its_own_oldest_only() -> None:
    admission = Admission(share=2, min_age_s=10.0)  # its own set-ups go whatever their age
    admission.opened("theirs", "10.0.0.9", 0.0)
    admission.opened("a1", "10.0.0.1", 1.0)
    admission.opened("a2", "10.0.0.1", 2.0)
    assert admission.make_room("10.0.0.1", live=3, max_peers=32, now=3.0) == ["a1"]
    assert admission.half_open == 2


async def test_unfinished_offers_give_way_to_a_real_client(monkeypatch: pytest.MonkeyPatch) -> None:
    async with rtc_server(max_peers=3) as (srv, manager):
        manager.admission.min_age_s = 0.0  # any half-open peer may be evicted (the default: 1 s)
        async with httpx.AsyncClient(trust_env=False) as http:
            for _ in range(5):  # never finished: no ICE, no DTLS ever comes
                response = await http.post(f"{srv.http_url}/rtc/offer", content=body())
                assert response.status_code == 200, response.text
        assert manager.admission.half_open == 3
        async with running(fast_client(srv)) as client:
            await open_client(srv, client)
            assert client.stats  # the real client got a slot and its channels opened


async def test_half_open_peers_are_reaped_by_their_own_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtc, "SETUP_TIMEOUT_S", 0.3)
    async with rtc_server() as (srv, manager):
        async with httpx.AsyncClient(trust_env=False) as http:
            for _ in range(3):
                assert (await http.post(f"{srv.http_url}/rtc/offer", content=body())).status_code == 200
        await wait_until(lambda: manager.count == 0, 5, "the half-open peers freed")
        assert manager.admission.half_open == 0
