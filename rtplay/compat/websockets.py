"""websockets internals rtplay relies on, in one place, checked at start-up.

The client aborts a connection whose peer is presumed dead instead of waiting for a closing
handshake it will never get; websockets' asyncio connection keeps its transport as the
``transport`` attribute, which this module reads.
"""

from __future__ import annotations

import websockets
from websockets.asyncio.connection import Connection

from rtplay.compat import require

#: The websockets versions whose internals this module was written against (pyproject bounds them).
TESTED = "13-17"


def check() -> None:
    """Fail with a clear message if websockets' asyncio connection keeps no ``transport``."""
    ok = "transport" in Connection.connection_made.__code__.co_names
    require("websockets", getattr(websockets, "__version__", "?"), TESTED, ok, "Connection.transport")


def abort(connection: Connection) -> None:
    """Drop the TCP connection at once, without a closing handshake."""
    connection.transport.abort()
