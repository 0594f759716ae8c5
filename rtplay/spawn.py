"""The built-in server as a child process: started, announced, stopped — never orphaned.

``rtplay`` and ``rtplay run`` start ``python -m servers`` (what ``rtplay serve`` runs) so that
the server and the clients + UI each get a core. The child prints one ``RTPLAY-READY {json}``
line once it listens; :class:`ServerProcess` reads the control URL from it. The child watches
its standard input, a pipe only the parent holds: however the parent ends (Ctrl-C, an
exception, SIGKILL), the pipe closes and the child stops itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from typing import IO, Any

from rtplay.protocol.options import READY_PREFIX, ServerOptions

log = logging.getLogger(__name__)

#: How long the child may take to print its ready line. Start-up is ~0.5 s (imports, a
#: certificate, three listeners); this only catches a child that is stuck.
READY_TIMEOUT_S = 20.0

#: How long a stopping child may take after its stdin closes before it is terminated.
STOP_TIMEOUT_S = 3.0

#: Longest ready line accepted (it carries a certificate, ~1 KiB).
MAX_READY_LINE = 64 * 1024


class SpawnError(RuntimeError):
    """The server process did not start; the message says why."""


class ServerProcess:
    """One spawned ``python -m servers``."""

    def __init__(self, proc: asyncio.subprocess.Process, ready: dict[str, Any]) -> None:
        self.proc = proc
        self.ready = ready
        """The ready line's JSON: the endpoints and ``control_url``."""

    @property
    def control_url(self) -> str:
        return str(self.ready["control_url"])

    @classmethod
    async def start(cls, options: ServerOptions, stderr: int | IO[Any] | None = None) -> ServerProcess:
        """Spawn the server and wait for its ready line; :class:`SpawnError` if it never comes."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "servers", *options.argv(), "--watch-stdin",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr,
            limit=MAX_READY_LINE,
            start_new_session=True,  # a Ctrl-C reaches the parent, which stops its child in order
        )
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                ready = await cls._read_ready(proc)
        except BaseException as exc:
            await cls._end(proc)
            if isinstance(exc, TimeoutError):
                raise SpawnError(f"the server printed no {READY_PREFIX} line within {READY_TIMEOUT_S:g} s") from None
            raise
        return cls(proc, ready)

    @staticmethod
    async def _read_ready(proc: asyncio.subprocess.Process) -> dict[str, Any]:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            word, _, rest = line.decode("utf-8", "replace").partition(" ")
            if word == READY_PREFIX:
                ready = json.loads(rest)
                if not isinstance(ready, dict) or "control_url" not in ready:
                    raise SpawnError(f"unexpected ready line: {rest[:80]!r}")
                return ready
        code = await proc.wait()
        raise SpawnError(f"the server exited with status {code} before it was ready")

    async def stop(self) -> int:
        """Let the child go (close its stdin) and wait for it; terminate it if it lingers."""
        return await self._end(self.proc)

    @staticmethod
    async def _end(proc: asyncio.subprocess.Process) -> int:
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
        try:
            for step in (None, proc.terminate, proc.kill):
                if step is not None:
                    with contextlib.suppress(ProcessLookupError):
                        step()
                try:
                    async with asyncio.timeout(STOP_TIMEOUT_S):
                        return await proc.wait()
                except TimeoutError:
                    log.warning("server process %d did not stop; %s", proc.pid, "terminating" if step is None else "killing")
            return await proc.wait()
        finally:
            # asyncio's Process has no close(); its transport (the stdout pipe) must be closed
            # while the loop runs, or it complains when collected after the loop is gone.
            transport = getattr(proc, "_transport", None)
            if transport is not None:
                transport.close()
