"""aioice internals rtplay relies on, in one place, checked at start-up.

aioice's ``Connection.gather_candidates`` asks the module-level
``aioice.ice.get_host_addresses`` for every interface address and deliberately skips
loopback (127.0.0.1 and ::1). rtplay wants the opposite: candidates on the bind address only.
:func:`gather_on` is the one deliberate hook: it swaps that function once, process-wide, for
one that returns the bind address — but only inside a ``with gather_on(host):`` block (a
context variable scopes it), so any other aioice user in the process is untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import aioice
import aioice.ice

from rtplay.compat import require
from rtplay.protocol.ice import host_addresses

#: The aioice versions whose internals this module was written against (pyproject bounds them).
TESTED = "0.9-0.13"


def check() -> None:
    """Fail with a clear message if this aioice lacks what :func:`gather_on` swaps."""
    require("aioice", aioice.__version__, TESTED, callable(getattr(aioice.ice, "get_host_addresses", None)),
            "aioice.ice.get_host_addresses")


_gather_host: ContextVar[str | None] = ContextVar("rtplay_ice_gather_host", default=None)
_original_get_host_addresses: Callable[[bool, bool], list[str]] | None = None


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    """Stands in for ``aioice.ice.get_host_addresses`` (same signature)."""
    assert _original_get_host_addresses is not None
    original = _original_get_host_addresses
    host = _gather_host.get()
    if host is None:  # not an rtplay peer: aioice's own behaviour
        return original(use_ipv4, use_ipv6)
    return host_addresses(host, lambda: original(use_ipv4, use_ipv6))


def _install() -> None:
    """Swap aioice's address lookup for :func:`_get_host_addresses`, once.

    aioice 0.9-0.13 look the function up by module global at each ``gather_candidates``
    call, so replacing the module attribute is enough. If a future aioice drops it, fail
    here rather than gather on every interface.
    """
    global _original_get_host_addresses
    if _original_get_host_addresses is not None:
        return
    check()
    _original_get_host_addresses = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = _get_host_addresses


@contextmanager
def gather_on(host: str) -> Iterator[None]:
    """Within this block (and tasks it starts), ICE gathers host candidates on ``host`` only.

    Wrap every aiortc call that may gather (``setLocalDescription``; also
    ``setRemoteDescription``, which schedules the connect task) in it.
    """
    _install()
    token = _gather_host.set(host)
    try:
        yield
    finally:
        _gather_host.reset(token)
