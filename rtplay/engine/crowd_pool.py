"""Crowds: N lightweight clients of one transport in worker processes, merged live.

:class:`Crowd` starts up to :data:`MAX_WORKERS` ``python -m rtplay.engine.crowd_worker`` processes
(one per core by default), splits the clients among them, merges their snapshots into one
:class:`~rtplay.model.crowd.CrowdStats` and, on :meth:`Crowd.stop`, collects their delivery figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import sys
import time
from typing import Any

from rtplay.clients import Endpoints
from rtplay.engine.crowd_worker import endpoints_to
from rtplay.model.crowd import MAX_CLIENTS, CrowdStats, merge_finals

log = logging.getLogger(__name__)

#: Worker processes per crowd: one per core; a worker carries a few thousand idle clients.
MAX_WORKERS = os.cpu_count() or 1

#: Fewest clients worth a worker of their own: below it one process is cheaper than two.
MIN_CLIENTS_PER_WORKER = 50

#: Longest line a worker may send: a snapshot of 5,000 clients' transitions is ~200 KB.
MAX_LINE_BYTES = 16 * 1024 * 1024

#: How long a worker may take to report its final figures after ``stop``.
STOP_TIMEOUT_S = 20.0

#: File descriptors each client needs (its socket), plus slack for the process itself.
FDS_PER_CLIENT = 2


def raise_fd_limit(needed: int) -> None:
    """Raise the soft open-files limit towards the hard one (a crowd needs a socket each)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        if want < needed:
            log.warning("open-files limit %d is below the %d a crowd needs: raise `ulimit -n`", want, needed)




class Crowd:
    """One transport's crowd of ``clients`` clients with one named retry policy."""

    def __init__(
        self, transport: str, clients: int, policy: str | None, seed: int = 0, options: dict[str, float] | None = None
    ) -> None:
        if not 1 <= clients <= MAX_CLIENTS:
            raise ValueError(f"a crowd has 1-{MAX_CLIENTS} clients, got {clients}")
        self.transport = transport
        self.clients = clients
        self.policy = policy
        self.seed = seed
        self.options = options or {}
        """Numeric client knobs (ping_interval…), as the pane's client has them."""
        self.stats = CrowdStats(clients)
        self.cursors: dict[int, int] = {}
        self.final: dict[str, Any] | None = None
        self._procs: list[asyncio.subprocess.Process] = []
        self._readers: list[asyncio.Task[None]] = []
        self._finals: dict[int, dict[str, Any]] = {}

    @property
    def cursor_min(self) -> int:
        """The lowest resume cursor of any client (0 until every worker reported)."""
        return min(self.cursors.values()) if len(self.cursors) == len(self._procs) and self.cursors else 0

    def split(self) -> list[int]:
        """Clients per worker."""
        workers = max(1, min(MAX_WORKERS, self.clients // MIN_CLIENTS_PER_WORKER))
        return [self.clients // workers + (1 if i < self.clients % workers else 0) for i in range(workers)]

    async def start(self, endpoints: Endpoints) -> None:
        """Start the workers (their clients begin connecting at once)."""
        first = 0
        try:
            for worker, count in enumerate(self.split()):
                config = {
                    "transport": self.transport, "count": count, "first": first, "seed": self.seed,
                    "policy": self.policy, "options": self.options, "endpoints": endpoints_to(endpoints),
                }
                first += count
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "rtplay.engine.crowd_worker",
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=MAX_LINE_BYTES,
                    preexec_fn=lambda count=count: raise_fd_limit(count * FDS_PER_CLIENT + 64),
                )
                self._procs.append(proc)
                assert proc.stdin is not None
                proc.stdin.write(json.dumps(config).encode() + b"\n")
                await proc.stdin.drain()
                self._readers.append(asyncio.create_task(self._read(worker, proc), name=f"crowd-{self.transport}-{worker}"))
        except BaseException:
            await self.stop(0)
            raise

    async def _read(self, worker: int, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            message = json.loads(line)
            if "delta" in message:
                self.stats.merge(worker, message["delta"], time.monotonic())
                self.cursors[worker] = int(message["cursor_min"])
            elif "final" in message:
                self._finals[worker] = message["final"]

    async def stop(self, published: int) -> None:
        """Stop every worker; their delivery figures (against ``published``) land in :attr:`final`."""
        for proc in self._procs:
            if proc.stdin is not None and proc.returncode is None:
                with contextlib.suppress(OSError):
                    proc.stdin.write(json.dumps({"stop": published}).encode() + b"\n")
                    await proc.stdin.drain()
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await asyncio.gather(*self._readers, return_exceptions=True)
                for proc in self._procs:
                    await proc.wait()
        except TimeoutError:
            log.warning("%s crowd: a worker did not stop in time; killing it", self.transport)
        for proc in self._procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        for task in self._readers:
            task.cancel()
        if self._finals:
            self.final = merge_finals(list(self._finals.values()))
        self._procs, self._readers = [], []

    def report(self, since: float | None = None) -> dict[str, Any]:
        """The transport's ``crowd`` entry (rates and attempts from ``since``)."""
        entry = self.stats.report(self.final, since)
        entry["workers"] = len(self.split())
        return entry
