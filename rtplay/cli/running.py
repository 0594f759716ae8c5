"""How a headless run waits out its duration: until the time is up or it is stopped (Ctrl-C),
saying how it goes once a second."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def run_for(duration: float, stop: asyncio.Event, tick: Callable[[], None] | None = None) -> None:
    """Wait ``duration`` seconds or until ``stop`` is set, calling ``tick`` once a second."""
    loop = asyncio.get_running_loop()
    end = loop.time() + duration
    while (remaining := end - loop.time()) > 0 and not stop.is_set():
        try:
            async with asyncio.timeout(min(1.0, remaining)):
                await stop.wait()
        except TimeoutError:
            pass
        if tick is not None:
            tick()
