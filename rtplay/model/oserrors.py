"""Human words for the operating system's errors, the same on every transport.

A pane, a log line or a report says "connection refused", never ``[Errno 111] Connect call
failed ('127.0.0.1', 8080)``. Pure: an exception in, a short phrase out.
"""

from __future__ import annotations

import errno

OS_ERROR_TEXTS: dict[int, str] = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ECONNABORTED: "connection aborted",
    errno.EPIPE: "connection closed while sending",
    errno.ETIMEDOUT: "connection timed out",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ENETDOWN: "network is down",
    errno.EADDRNOTAVAIL: "address not available",
    errno.EADDRINUSE: "address already in use",
}
"""The errno values a client meets, in the words a user reads."""


def describe_os_error(exc: BaseException) -> str | None:
    """The phrase for ``exc`` when it is (or wraps) a known OS error, else None.

    Follows ``__cause__``/``__context__`` and the sub-exceptions of an ``OSError`` raised for
    several addresses at once (``create_connection`` on ``localhost`` tries ::1 and 127.0.0.1).
    """
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in OS_ERROR_TEXTS:
            return OS_ERROR_TEXTS[current.errno]
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return None


def describe_error(exc: BaseException) -> str:
    """``connection refused`` for a known OS error, else the exception's own message."""
    return describe_os_error(exc) or str(exc) or type(exc).__name__
