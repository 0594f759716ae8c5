"""The log policy of every aiohttp listener rtplay runs (the server's, the control API's, the
proxy's and its API's): what is the peer's fault is one line, what is ours keeps its traceback."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError


class OneLineLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server logger, minus the tracebacks it logs for what is not our bug.

    A malformed request or a peer that went away is one line (a bad request at WARNING, a
    lost connection at INFO); anything else is a real failure and keeps its traceback.
    """

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        """Log ``msg`` as one line when the peer is at fault, with a traceback otherwise."""
        exc = exc_info if isinstance(exc_info, BaseException) else None
        text = str(msg) % args if args else str(msg)
        if isinstance(exc, ConnectionError):
            self.info("%s: connection lost (%s)", text, exc or "closed")
        elif isinstance(exc, HttpProcessingError):
            self.warning("%s: bad request: %s", text, exc.message.splitlines()[0][:200])
        else:
            self.error(msg, *args, exc_info=exc_info, **kwargs)


def server_logger() -> OneLineLog:
    """The logger to hand aiohttp's request handlers (``AppRunner(..., logger=...)``)."""
    return OneLineLog(logging.getLogger("aiohttp.server"), {})
