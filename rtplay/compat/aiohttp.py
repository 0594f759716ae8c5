"""aiohttp internals rtplay relies on, in one place, checked at start-up.

The server counts and sheds connections as they are accepted, which needs the protocol
factory a site hands to ``loop.create_server``: :class:`FactoryTCPSite` is aiohttp's
``TCPSite`` with that factory wrapped, reading the site's runner, bind options and server
(``_runner``, ``_host``, ``_port``, ``_backlog``, ``_reuse_address``, ``_reuse_port``,
``_server``, ``_bound_port``) and registering with the runner as ``BaseSite.start`` does
(``BaseRunner._reg_site``). An outage's end of the HTTP listener calls ``Server.pre_shutdown``
(what aiohttp's cleanup does first) and reads ``Server.connections``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
from aiohttp import web

from rtplay.compat import require

#: The aiohttp versions whose internals this module was written against (pyproject bounds them).
TESTED = "3.9-3.14"

ProtocolFactory = Callable[[], asyncio.BaseProtocol]

_SITE_ATTRIBUTES = ("_runner", "_host", "_port", "_backlog", "_reuse_address", "_reuse_port", "_server", "_bound_port")


def check() -> None:
    """Fail with a clear message if TCPSite lacks the attributes :class:`FactoryTCPSite` reads."""
    slots = {name for cls in web.TCPSite.__mro__ for name in getattr(cls, "__slots__", ())}
    missing = [name for name in _SITE_ATTRIBUTES if name not in slots]
    if not hasattr(web.BaseRunner, "_reg_site"):
        missing.append("BaseRunner._reg_site")
    # An outage closes idle connections and waits for the listed ones (servers.runner).
    missing += [f"Server.{name}" for name in ("pre_shutdown", "connections") if not hasattr(web.Server, name)]
    require("aiohttp", aiohttp.__version__, TESTED, not missing, f"TCPSite.{', '.join(missing) or '…'}")


class FactoryTCPSite(web.TCPSite):
    """A ``TCPSite`` whose connections are made by ``wrap(server)`` instead of the runner's
    own server (a callable protocol factory): the wrapper sees every accepted connection."""

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, wrap: Callable[[web.Server], ProtocolFactory],
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, host, port, reuse_address=True, backlog=backlog)
        self._wrap = wrap

    async def start(self) -> None:
        """Bind and listen, as ``TCPSite.start`` does, with the wrapped factory."""
        self._runner._reg_site(self)  # what BaseSite.start does
        server = self._runner.server
        assert isinstance(server, web.Server)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._wrap(server), self._host, self._port, backlog=self._backlog,
            reuse_address=self._reuse_address, reuse_port=self._reuse_port,
        )
        self._bound_port = self._server.sockets[0].getsockname()[1] if self._server.sockets else self._port
