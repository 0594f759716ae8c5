"""Resume cursors (``since=N``, ``Last-Event-ID``): one grammar for every endpoint. Pure."""

from __future__ import annotations

#: Longest cursor accepted, in digits: 18 digits fit an int64 (a browser's or a proxy's
#: integer), and no hub publishes 10^18 messages.
MAX_CURSOR_DIGITS = 18


def parse_cursor(raw: str | None, name: str = "since") -> int:
    """A resume cursor: a non-negative integer (absent or empty = 0).

    Raises :class:`ValueError` with a message naming ``name``; each endpoint maps it to its
    own answer (HTTP 400, a refused WebTransport session).
    """
    if raw is None or raw == "":
        return 0
    if not raw.isascii() or not raw.isdigit() or len(raw) > MAX_CURSOR_DIGITS:
        raise ValueError(f"{name} must be a non-negative integer, got {raw[:40]!r}")
    return int(raw)
