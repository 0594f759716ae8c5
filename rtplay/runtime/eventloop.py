"""Which event loop rtplay runs on: uvloop where it is installed, asyncio otherwise.

uvloop roughly halves the loop's own per-message overhead (aiortc's and aioquic's timers,
aiohttp's transports), which is what keeps a 1000 msg/s session out of overload. Set
``RTPLAY_LOOP=asyncio`` to run on the standard loop (e.g. to compare, or to debug).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The environment variable that picks the loop: ``uvloop`` (the default) or ``asyncio``.
LOOP_ENV = "RTPLAY_LOOP"

LOOPS = ("uvloop", "asyncio")


def loop_name(environ: dict[str, str] | None = None) -> str:
    """The loop asked for (``uvloop`` unless ``RTPLAY_LOOP`` says otherwise); ValueError if unknown."""
    name = (os.environ if environ is None else environ).get(LOOP_ENV, "").strip().lower() or "uvloop"
    if name not in LOOPS:
        raise ValueError(f"{LOOP_ENV} must be one of {', '.join(LOOPS)}, got {name!r}")
    return name


def loop_factory(name: str | None = None) -> Callable[[], asyncio.AbstractEventLoop]:
    """A factory of the chosen loop; asyncio's when uvloop is asked for but not installed."""
    name = loop_name() if name is None else name
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:
            log.info("uvloop is not installed: running on asyncio's event loop")
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], name: str | None = None) -> T:
    """``asyncio.run(main)`` on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory(name)) as runner:
        return runner.run(main)
