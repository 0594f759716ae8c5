"""Crowds: N lightweight clients of one transport on Dask workers, merged live.

:class:`Crowd` splits its clients among the cluster's workers, places one
:class:`~rtplay.engine.crowd_slice.CrowdSlice` actor on each, pulls their snapshots into one
:class:`~rtplay.model.crowd.CrowdStats` and, on :meth:`Crowd.stop`, collects their delivery
figures. A worker that dies or is lost mid-run is seen on the next pull: its slice is marked
``lost`` (a WARNING line, the crowd view), its clients are counted apart (``lost_clients``)
and no longer in the live states, and the run goes on with the rest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from rtplay.clients import Endpoints
from rtplay.engine.crowd_cluster import MIN_CLIENTS_PER_WORKER, CrowdCluster, WorkerInfo
from rtplay.engine.crowd_slice import RAMP_PER_S, SNAPSHOT_S, CrowdSlice, SliceConfig
from rtplay.model.crowd import MAX_CLIENTS, CrowdStats, merge_finals

log = logging.getLogger(__name__)

#: How long one pull of a slice's snapshot may take before the session asks the scheduler
#: whether its worker is still there: a pull answers in milliseconds, but a worker starved of
#: CPU by its own crowd can take seconds, and a slow worker is not a lost one. One the
#: scheduler no longer lists is lost; one it still lists is ``unresponsive`` until it answers.
PULL_TIMEOUT_S = 10.0

#: While a pull is overdue, how often the session asks the scheduler whether the worker is
#: still listed: a call in flight to a worker that died can hang until Dask gives up on it.
LISTED_CHECK_S = 1.0

#: How long a slice may take to stop and answer its final figures (its STOP_TIMEOUT_S and more).
STOP_TIMEOUT_S = 20.0

#: How long placing a slice on a worker may take (the worker imports rtplay's clients first).
PLACE_TIMEOUT_S = 60.0


@dataclass
class Slice:
    """One worker's share of a crowd, as the session sees it."""

    worker: WorkerInfo
    first: int
    clients: int
    actor: Any = None
    state: str = "starting"
    """``starting``, ``running``, ``unresponsive`` (a pull overdue), ``stopped`` or ``lost``."""
    cpu_s: float = 0.0
    rss_mb: float = 0.0
    cursor: int | None = None
    gc: dict[str, float] = field(default_factory=dict)
    """The worker's collector pauses (``gc_s``, ``gc_pause_max_ms``, ``gc_full``)."""
    final: dict[str, Any] | None = None
    poller: asyncio.Task[None] | None = field(default=None, repr=False)

    def report(self) -> dict[str, Any]:
        """This worker's entry of the crowd's ``workers`` list."""
        return {
            "host": self.worker.host, "address": self.worker.address, "clients": self.clients,
            "cpu_s": self.cpu_s, "rss_mb": self.rss_mb, "state": self.state,
        } | self.gc


class Crowd:
    """One transport's crowd of ``clients`` clients with one named retry policy."""

    def __init__(
        self, transport: str, clients: int, policy: str | None, cluster: CrowdCluster, seed: int = 0,
        options: dict[str, float] | None = None,
    ) -> None:
        if not 1 <= clients <= MAX_CLIENTS:
            raise ValueError(f"a crowd has 1-{MAX_CLIENTS} clients, got {clients}")
        self.transport = transport
        self.clients = clients
        self.policy = policy
        self.seed = seed
        self.options = options or {}
        """Numeric client knobs (ping_interval…), as the pane's client has them."""
        self.cluster = cluster
        self.stats = CrowdStats(clients)
        self.final: dict[str, Any] | None = None
        self.slices: list[Slice] = []

    @property
    def cursor_min(self) -> int:
        """The lowest resume cursor of any live client (0 until every live slice reported)."""
        live = [s for s in self.slices if s.state != "lost"]
        if not live or any(s.cursor is None for s in live):
            return 0
        return min(s.cursor for s in live if s.cursor is not None)

    @property
    def lost_clients(self) -> int:
        """Clients on workers lost mid-run (counted apart from every other figure)."""
        return sum(s.clients for s in self.slices if s.state == "lost")

    def split(self, workers: list[WorkerInfo]) -> list[Slice]:
        """The clients split evenly among (at most) ``workers``."""
        count = max(1, min(len(workers), self.clients // MIN_CLIENTS_PER_WORKER))
        slices, first = [], 0
        for i in range(count):
            n = self.clients // count + (1 if i < self.clients % count else 0)
            slices.append(Slice(workers[i], first, n))
            first += n
        return slices

    async def start(self, endpoints: Endpoints) -> None:
        """Place a slice on each worker (their clients begin connecting at once)."""
        self.slices = self.split(await self.cluster.workers())
        try:
            async with asyncio.timeout(PLACE_TIMEOUT_S):
                await asyncio.gather(*(self._place(i, s, endpoints) for i, s in enumerate(self.slices)))
        except BaseException:
            await self.stop(0)
            raise

    async def _place(self, index: int, part: Slice, endpoints: Endpoints) -> None:
        config = SliceConfig(
            self.transport, part.clients, part.first, self.seed, self.policy, endpoints, self.options,
            RAMP_PER_S / len(self.slices),
        )
        future = self.cluster.client.submit(
            CrowdSlice, config, actor=True, workers=[part.worker.address], allow_other_workers=False, pure=False,
        )
        part.actor = await future
        figures = await part.actor.start()
        part.cpu_s, part.rss_mb, part.state = figures["cpu_s"], figures["rss_mb"], "running"
        part.poller = asyncio.create_task(self._pull(index, part), name=f"crowd-{self.transport}-pull-{index}")

    async def _pull(self, index: int, part: Slice) -> None:
        """Merge ``part``'s snapshots every SNAPSHOT_S until it stops or its worker is lost."""
        while True:
            call: asyncio.Future[Any] | None = None
            try:
                # Calling a lost worker's actor can raise at once (Dask knows it is gone).
                call = asyncio.ensure_future(part.actor.drain())
                waited = 0.0
                while not (await asyncio.wait({call}, timeout=LISTED_CHECK_S))[0]:
                    waited += LISTED_CHECK_S
                    if part.worker.address not in {w.address for w in await self.cluster.workers()}:
                        raise ConnectionError("the scheduler no longer lists it")
                    if waited >= PULL_TIMEOUT_S and part.state == "running":
                        log.warning("%s crowd: worker %s has not answered for %g s", self.transport,
                                    part.worker.address, PULL_TIMEOUT_S)
                    part.state = "unresponsive"
                if call.cancelled():  # Dask cancels an actor's calls when its worker leaves
                    raise ConnectionError("its actor's calls were cancelled")
                snapshot = call.result()
            except Exception as exc:  # OSError, CommClosedError, RuntimeError: the worker is gone
                self._lose(index, part, exc)
                return
            finally:
                if call is not None:  # still running only when this task itself is cancelled
                    call.cancel()
            part.state = "running"
            self._merge(index, part, snapshot)
            await asyncio.sleep(SNAPSHOT_S)

    def _merge(self, index: int, part: Slice, snapshot: dict[str, Any]) -> None:
        self.stats.merge(index, snapshot["delta"], time.monotonic())
        part.cursor = int(snapshot["cursor_min"])
        part.cpu_s, part.rss_mb = snapshot["cpu_s"], snapshot["rss_mb"]
        part.gc = {k: snapshot[k] for k in ("gc_s", "gc_pause_max_ms", "gc_full") if k in snapshot}

    def _lose(self, index: int, part: Slice, exc: BaseException) -> None:
        part.state = "lost"
        self.stats.drop_worker(index)
        log.warning(
            "%s crowd: worker %s (host %s) lost mid-run (%s: %s); its %d clients are counted apart (lost_clients)",
            self.transport, part.worker.address, part.worker.host, type(exc).__name__, exc, part.clients,
        )

    async def stop(self, published: int, replay_from: int = 1) -> None:
        """Stop every slice; their delivery figures (against ``published``) land in :attr:`final`."""
        pollers = [s.poller for s in self.slices if s.poller is not None]
        for task in pollers:
            task.cancel()
        if pollers:  # a cancellation of this call itself still propagates
            await asyncio.wait(pollers)
        await asyncio.gather(*(self._stop_one(i, s, published, replay_from) for i, s in enumerate(self.slices)))
        finals = [s.final for s in self.slices if s.final is not None]
        if finals:
            self.final = merge_finals(finals) | {"lost_clients": self.lost_clients}

    async def _stop_one(self, index: int, part: Slice, published: int, replay_from: int) -> None:
        if part.state not in ("running", "unresponsive"):
            part.actor = None
            return
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                answer = await part.actor.stop(published, replay_from)
        except Exception as exc:
            self._lose(index, part, exc)
        else:
            self._merge(index, part, answer)
            process = {"cpu_s": answer["cpu_s"], "max_rss_kb": answer["rss_mb"] * 1024}
            part.final, part.state = answer["final"] | process, "stopped"
        part.actor = None  # releases the actor on its worker

    def report(self, since: float | None = None) -> dict[str, Any]:
        """The transport's ``crowd`` entry (rates and attempts from ``since``)."""
        entry = self.stats.report(self.final, since)
        entry["lost_clients"] = self.lost_clients
        entry["workers"] = [s.report() for s in self.slices]
        return entry
