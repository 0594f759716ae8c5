"""textual-serve internals rtplay relies on, in one place, checked before ``rtplay --web`` serves.

textual-serve builds its aiohttp application in the private ``Server._make_app`` and offers
no public way to add a route to it; the ``--web`` page serves a local font beside the page
(rtplay/cli/web.py), so :class:`RoutedServer` extends that method, and :func:`web_app` is the
one other place that calls it (for serving the application in a test). Its ``serve`` silences
what aiohttp says once the listener is bound, the one moment the page can be reached, so
:meth:`RoutedServer.serve` runs the application as it does, with a callback at that moment.
Nothing else here reads textual-serve's internals.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import signal
from collections.abc import Callable

from aiohttp import web
from textual_serve.server import Server

from rtplay.compat import require

#: The textual-serve versions whose internals this module was written against (pyproject bounds them).
TESTED = "1.1"


def check() -> None:
    """Fail with a clear message if textual-serve's Server no longer builds its application
    in a coroutine ``_make_app`` (the method :class:`RoutedServer` extends)."""
    make_app = getattr(Server, "_make_app", None)
    code = getattr(make_app, "__code__", None)
    ok = inspect.iscoroutinefunction(make_app) and code is not None and "Application" in code.co_names
    require("textual-serve", importlib.metadata.version("textual-serve"), TESTED, ok, "Server._make_app")
    serves = all(callable(getattr(Server, name, None)) for name in ("initialize_logging", "request_exit"))
    require("textual-serve", importlib.metadata.version("textual-serve"), TESTED, serves, "Server.request_exit")


class RoutedServer(Server):
    """textual-serve's server with the routes of :meth:`extra_routes` added to its application,
    and a :meth:`serve` that says when its listener is bound."""

    def extra_routes(self) -> list[web.RouteDef]:
        """Routes served beside textual-serve's own (none here; subclasses add theirs)."""
        return []

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.add_routes(self.extra_routes())
        return app

    def serve(self, debug: bool = False, on_listening: Callable[[], None] | None = None) -> None:
        """Serve until Ctrl-C or SIGTERM, as textual-serve does; ``on_listening`` is called
        once the listener is bound, when the page can first be reached."""
        self.debug = debug
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        loop.add_signal_handler(signal.SIGINT, self.request_exit)
        loop.add_signal_handler(signal.SIGTERM, self.request_exit)

        def listening(_banner: str) -> None:  # aiohttp's "Running on …", said once bound
            if on_listening is not None:
                on_listening()

        web.run_app(self._make_app(), host=self.host, port=self.port, handle_signals=False, loop=loop, print=listening)


async def web_app(server: RoutedServer) -> web.Application:
    """The aiohttp application ``server.serve()`` would run, built without running it."""
    return await server._make_app()
