"""textual-serve internals rtplay relies on, in one place, checked before ``rtplay --web`` serves.

textual-serve builds its aiohttp application in the private ``Server._make_app`` and offers
no public way to add a route to it; the ``--web`` page serves a local font beside the page
(rtplay/cli/web.py), so :class:`RoutedServer` extends that method, and :func:`web_app` is the
one other place that calls it (for serving the application in a test). Nothing else here
reads textual-serve's internals.
"""

from __future__ import annotations

import importlib.metadata
import inspect

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


class RoutedServer(Server):
    """textual-serve's server with the routes of :meth:`extra_routes` added to its application."""

    def extra_routes(self) -> list[web.RouteDef]:
        """Routes served beside textual-serve's own (none here; subclasses add theirs)."""
        return []

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.add_routes(self.extra_routes())
        return app


async def web_app(server: RoutedServer) -> web.Application:
    """The aiohttp application ``server.serve()`` would run, built without running it."""
    return await server._make_app()
