"""Crowds on Dask: a slice's end-of-run figures, and a worker killed mid-run."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import warnings

import pytest

from rtplay.clients import Endpoints
from rtplay.engine import crowd_pool
from rtplay.engine.crowd_cluster import ClusterUnreachable, CrowdCluster, WorkerInfo
from rtplay.engine.crowd_pool import Crowd, Slice
from rtplay.engine.crowd_slice import CrowdSlice, SliceConfig
from rtplay.engine.session import Session, SessionConfig
from rtplay.model.events import State
from rtplay.protocol.options import ServerOptions

FAST_RETRY = "exponential:jitter=full,base=0.2,cap=0.4"


def closed_port() -> int:
    """A loopback port nothing listens on (connects are refused: clients keep retrying)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def retrying_slice(count: int) -> CrowdSlice:
    """A slice whose clients are all retrying against a refused port, cursor 0."""
    config = SliceConfig("ws", count, 0, 0, "fixed:30", Endpoints(f"http://127.0.0.1:{closed_port()}"))
    part = CrowdSlice(config)
    await part.start()
    async with asyncio.timeout(10):
        while part.recorder.state_counts()["retrying"] < count:
            await asyncio.sleep(0.02)
    return part


async def test_crowd_clients_still_retrying_with_a_servable_cursor_are_pending_not_lost() -> None:
    part = await retrying_slice(5)
    answer = await part.stop(published=40, replay_from=1)
    assert answer["final"]["pending_total"] == 5 * 40
    assert answer["final"]["lost_total"] == 0
    assert all(t.done() for t in part.tasks)


async def test_crowd_clients_retrying_from_a_cursor_the_server_cannot_replay_are_lost() -> None:
    part = await retrying_slice(5)
    answer = await part.stop(published=40, replay_from=10)  # seqs 1-9 are gone from the server's buffer
    assert answer["final"]["lost_total"] == 5 * 40
    assert answer["final"]["pending_total"] == 0


@pytest.mark.long
async def test_a_worker_killed_mid_run_is_reported_and_its_clients_counted_apart(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = SessionConfig(
        transports=["ws"], server=ServerOptions(rate=20), crowd=100, crowd_workers=2,
        client_options={"ws": {"retry": FAST_RETRY}},
    )
    async with Session(config) as session:
        crowd = session.crowds["ws"]
        assert [s.state for s in crowd.slices] == ["running", "running"]
        assert crowd.stats.states()["open"] == 100
        doomed, kept = crowd.slices
        assert session.crowd_set.cluster is not None
        pids = await session.crowd_set.cluster.client.run(os.getpid, workers=[doomed.worker.address])
        with caplog.at_level(logging.WARNING, logger="rtplay.engine.crowd_pool"):
            os.kill(pids[doomed.worker.address], signal.SIGKILL)
            async with asyncio.timeout(20):
                while doomed.state != "lost":
                    await asyncio.sleep(0.05)
        assert crowd.stats.states()["open"] == 50  # the lost clients are no longer counted as open
        await session.drop("ws")  # the run goes on: the kept worker's clients reconnect and catch up
        assert await session.settle(10)
        await session.finish_crowds()
        report = session.report()
    entry = report["transports"]["ws"]["crowd"]
    assert entry["lost_clients"] == doomed.clients == 50
    workers = {w["address"]: w for w in entry["workers"]}
    assert workers[doomed.worker.address]["state"] == "lost"
    measured = {"cpu_s": 0, "rss_mb": 0, "gc_s": 0, "gc_pause_max_ms": 0, "gc_full": 0}
    assert workers[kept.worker.address] | measured == {
        "host": "127.0.0.1", "address": kept.worker.address, "clients": 50, "state": "stopped",
    } | measured
    assert workers[kept.worker.address]["cpu_s"] > 0 and workers[kept.worker.address]["rss_mb"] > 0
    # The kept worker's figures are whole: every client has every message, none lost.
    assert entry["delivered_min"] == report["published"] and entry["lost_total"] == 0 and entry["pending_total"] == 0
    assert entry["states"]["open"] == 50
    assert report["transports"]["ws"]["state"] == State.OPEN.value
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(doomed.worker.address in m and "lost mid-run" in m and "50 clients" in m for m in warnings)


async def test_an_unreachable_scheduler_is_a_clear_error_at_once() -> None:
    cluster = CrowdCluster(f"tcp://127.0.0.1:{closed_port()}", 1)
    with pytest.raises(ClusterUnreachable, match="unreachable.*refused"):
        async with asyncio.timeout(5):
            await cluster.start()
    with pytest.raises(ClusterUnreachable, match="tcp://HOST:PORT"):
        await CrowdCluster("127.0.0.1:8786", 1).start()


class SilentActor:
    """A slice whose worker never answers (its loop starved or wedged)."""

    def __init__(self) -> None:
        self.pulls = 0

    async def drain(self) -> dict[str, object]:
        self.pulls += 1
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class FakeCluster:
    def __init__(self, workers: list[WorkerInfo]) -> None:
        self.listed = workers

    async def workers(self) -> list[WorkerInfo]:
        return list(self.listed)


async def test_a_slow_worker_is_unresponsive_not_lost_until_the_scheduler_drops_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(crowd_pool, "PULL_TIMEOUT_S", 0.1)
    monkeypatch.setattr(crowd_pool, "LISTED_CHECK_S", 0.05)
    worker = WorkerInfo("tcp://10.0.0.2:4000", "10.0.0.2")
    cluster = FakeCluster([worker])
    crowd = Crowd("ws", 60, None, cluster)  # type: ignore[arg-type]
    part = Slice(worker, 0, 60, actor=SilentActor(), state="running")
    crowd.slices = [part]
    crowd.stats.merge(0, {"attempts": [], "connects": [], "delays": [], "transitions": [],
                          "states": {"open": 60}}, 0.0)
    task = asyncio.create_task(crowd._pull(0, part))
    try:
        async with asyncio.timeout(5):
            while part.state != "unresponsive":
                await asyncio.sleep(0.01)
        assert crowd.lost_clients == 0 and crowd.stats.states()["open"] == 60  # slow is not lost
        cluster.listed = []  # the scheduler gave up on it
        await asyncio.wait_for(task, 5)
    finally:
        task.cancel()
    assert part.state == "lost" and crowd.lost_clients == 60 and crowd.stats.states()["open"] == 0
    assert crowd.report()["workers"][0]["state"] == "lost"


async def test_two_crowds_at_once_each_get_a_port_of_their_own() -> None:
    """Dask's scheduler serves its health listener on 8787 unless told otherwise: a second
    crowd running beside the first (two rtplay runs, two test workers) found it taken and
    warned "Port 8787 is already in use"."""
    first, second = CrowdCluster(None, 1), CrowdCluster(None, 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            await first.start()
            await second.start()
        finally:
            await second.close()
            await first.close()
    assert not [w for w in caught if "already in use" in str(w.message)], [str(w.message) for w in caught]
