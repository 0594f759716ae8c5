"""The Dask cluster the crowds run on: a LocalCluster of worker processes, or a user's scheduler.

By default (no address) rtplay starts a ``distributed.LocalCluster`` with one worker process per
core (fewer for a small crowd), everything bound to 127.0.0.1 and no dashboard. With
``--cluster tcp://HOST:8786`` it connects to a scheduler the user runs (``dask scheduler``)
whose workers (``dask worker tcp://HOST:8786``, rtplay installed) may be on other hosts.
Workers run their tasks' coroutines on their own event loop; rtplay asks for uvloop there when
it is installed (Dask's ``distributed.admin.event-loop`` setting; a user's own workers take it
from ``DASK_DISTRIBUTED__ADMIN__EVENT_LOOP=uvloop``).

``distributed`` is imported here only, and only when a crowd runs: it takes a second to load.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

#: How long connecting to a user's scheduler may take before the run gives up (exit 2): a
#: scheduler on a LAN answers in milliseconds; ten seconds covers a slow VPN, not a typo.
CONNECT_TIMEOUT_S = 10.0

#: How long a user's scheduler may take to have its first worker: one started beside the run
#: (``dask worker … &``) registers within a few seconds.
WORKER_WAIT_S = 15.0

#: How long a LocalCluster's worker processes may take to come up (each imports rtplay's clients).
LOCAL_START_TIMEOUT_S = 60.0

#: Fewest clients worth a worker process of their own: below it one process is cheaper than two.
MIN_CLIENTS_PER_WORKER = 50


class ClusterUnreachable(Exception):
    """The crowd's scheduler could not be reached or has no workers (the run cannot happen)."""


@dataclass(frozen=True)
class WorkerInfo:
    """One Dask worker the crowd can place clients on."""

    address: str
    """Its Dask address (``tcp://10.0.0.2:40123``): where its clients run."""
    host: str
    """The host part of the address: the machine the clients connect from."""


def local_workers(total_clients: int, cores: int | None = None) -> int:
    """Worker processes a LocalCluster gets: one per core, fewer for a small crowd."""
    cores = cores or os.cpu_count() or 1
    return max(1, min(cores, total_clients // MIN_CLIENTS_PER_WORKER))


def start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker against this process's real stderr.

    The tracker's process is handed ``sys.stderr.fileno()``; under a Textual app ``sys.stderr``
    is a capture without a real descriptor and starting the LocalCluster's workers would fail
    ("bad value(s) in fds_to_keep"). Started once, the tracker serves every later worker.
    """
    from multiprocessing import resource_tracker

    captured = sys.stderr
    sys.stderr = sys.__stderr__
    try:
        resource_tracker.ensure_running()
    finally:
        sys.stderr = captured


async def probe(address: str) -> None:
    """Open and close a TCP connection to a ``tcp://HOST:PORT`` scheduler: a refused or
    unroutable address fails here at once, not after Dask's own connect retries."""
    parsed = urlsplit(address)
    if parsed.scheme != "tcp" or parsed.hostname is None or parsed.port is None:
        raise ClusterUnreachable(f"expected a scheduler address tcp://HOST:PORT, got {address!r}")
    async with asyncio.timeout(CONNECT_TIMEOUT_S):
        _, writer = await asyncio.open_connection(parsed.hostname, parsed.port)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


#: Dask settings for the LocalCluster's workers: their own bookkeeping is CPU the crowd's
#: clients do not get (measured with py-spy on a steady crowd). A user's own workers take
#: the same from ``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False`` and so on.
WORKER_CONFIG: dict[str, object] = {
    "distributed.worker.profile.enabled": False,  # its sampler walks every thread's stack each 10 ms
    "distributed.admin.system-monitor.disk": False,  # host-wide disk counters read every 500 ms
    "distributed.admin.tick.interval": "200ms",  # the loop-health tick (20 ms by default)
}


def configure_workers() -> None:
    """Set :data:`WORKER_CONFIG`, and uvloop as the workers' event loop where it is installed."""
    import dask

    dask.config.set(WORKER_CONFIG)
    if importlib.util.find_spec("uvloop") is not None:
        dask.config.set({"distributed.admin.event-loop": "uvloop"})


class CrowdCluster:
    """A Dask client and, unless ``address`` names a scheduler, the LocalCluster it owns."""

    def __init__(self, address: str | None, local_workers: int) -> None:
        self.address = address
        self.local_workers = local_workers
        self._cluster: Any = None
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The asynchronous ``distributed.Client`` (after :meth:`start`)."""
        if self._client is None:
            raise RuntimeError("the crowd cluster has not started")
        return self._client

    async def start(self) -> None:
        """Start the LocalCluster or reach the user's scheduler; :class:`ClusterUnreachable` if not."""
        from distributed import Client, LocalCluster

        # Dask's own INFO lines (a scheduler started, a worker registered) are not the run's.
        logging.getLogger("distributed").setLevel(logging.WARNING)
        try:
            if self.address is None:
                configure_workers()
                start_resource_tracker()
                self._cluster = await LocalCluster(
                    n_workers=self.local_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                    # No dashboard; its health/metrics HTTP listener binds 127.0.0.1 like the rest,
                    # on a free port (Dask's default, 8787, warns when another crowd has it).
                    dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    asynchronous=True, silence_logs=logging.WARNING,
                )
                self._client = await Client(self._cluster, asynchronous=True, timeout=LOCAL_START_TIMEOUT_S)
                await self._client.wait_for_workers(self.local_workers, timeout=LOCAL_START_TIMEOUT_S)
            else:
                await probe(self.address)
                self._client = await Client(self.address, asynchronous=True, timeout=CONNECT_TIMEOUT_S)
                with contextlib.suppress(TimeoutError):  # a worker just started is still registering
                    await self._client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        except (OSError, TimeoutError) as exc:
            await self.close()
            where = self.address or "a local cluster"
            raise ClusterUnreachable(f"crowd scheduler {where} unreachable: {exc}") from exc
        except BaseException:
            await self.close()
            raise
        if not await self.workers():
            await self.close()
            raise ClusterUnreachable(f"crowd scheduler {self.address} has no workers (start `dask worker {self.address}`)")

    async def workers(self) -> list[WorkerInfo]:
        """The scheduler's workers now, in address order."""
        identity = await self.client.scheduler.identity()
        found = [WorkerInfo(address, str(info.get("host", ""))) for address, info in identity["workers"].items()]
        return sorted(found, key=lambda w: w.address)

    async def close(self) -> None:
        """Close the client and the LocalCluster it started (a user's scheduler is left running)."""
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        if client is not None:
            await client.close()
        if cluster is not None:
            await cluster.close()
