"""A proxy, its Toxiproxy API and a fault timeline, run together: what ``rtplay proxy`` runs
in the playground and headless alike."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from rtplay.proxy.api import DEFAULT_API_PORT, ApiServer, ProxyRegistry
from rtplay.proxy.proxy import FaultProxy
from rtplay.proxy.spec import TimedToxic

#: The listen address when none is given: loopback, any free port.
DEFAULT_LISTEN = "127.0.0.1:0"


@dataclass
class ProxyRun:
    """A proxy, its API and a fault timeline (times from :meth:`start`)."""

    upstream: str
    listen: str = DEFAULT_LISTEN
    name: str = "app"
    api_host: str = "127.0.0.1"
    api_port: int = DEFAULT_API_PORT
    faults: list[TimedToxic] = field(default_factory=list)
    seed: int | None = None
    registry: ProxyRegistry = field(init=False)
    proxy: FaultProxy = field(init=False)
    api: ApiServer = field(init=False)
    _timers: list[asyncio.TimerHandle] = field(default_factory=list, init=False)

    async def start(self) -> None:
        """Start the proxy and the API, and arm the fault timeline; OSError when a port is taken."""
        self.registry = ProxyRegistry(self.seed)
        self.proxy = FaultProxy(self.name, self.upstream, self.listen, seed=self.seed)
        self.api = ApiServer(self.registry, self.api_host, self.api_port)
        await self.proxy.start()
        self.registry.proxies[self.name] = self.proxy
        try:
            await self.api.start()
        except BaseException:
            await self.proxy.stop()
            raise
        loop = asyncio.get_running_loop()
        for timed in self.faults:
            self._timers.append(loop.call_later(timed.start, self._begin, timed))
            if timed.end is not None:
                self._timers.append(loop.call_later(timed.end, self._end, timed))

    def _begin(self, timed: TimedToxic) -> None:
        self.proxy.toxics.add(timed.toxic)
        if timed.toxic.type == "drop":  # one-shot: it acted when added
            self._end(timed)

    def _end(self, timed: TimedToxic) -> None:
        try:
            self.proxy.toxics.remove(timed.toxic.name)
        except LookupError:
            pass  # removed meanwhile (by the API, or an outage that ended itself)

    async def stop(self) -> None:
        """Cancel the timeline; stop the API and every proxy."""
        for timer in self._timers:
            timer.cancel()
        await self.api.stop()
        await self.registry.close()

    def banner(self) -> str:
        """What to print at start: where the proxy and the API listen."""
        token = f" (token {self.api.token})" if self.api.token else ""
        return (
            f"rtplay proxy {self.name}: {self.proxy.url} -> {self.proxy.upstream}\n"
            f"Toxiproxy API: {self.api.url}{token}"
        )

    def report(self, duration: float) -> dict[str, Any]:
        """The headless report: the proxy, the faults and what the wire showed."""
        return {
            "duration_s": round(duration, 3), "proxy": self.proxy.to_json(),
            "faults": [str(t.toxic.name) for t in self.faults], "wire": self.proxy.wire_json(),
        }
