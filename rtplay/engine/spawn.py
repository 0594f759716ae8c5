"""The built-in server as a child process: started, announced, stopped — never orphaned.

``rtplay`` and ``rtplay run`` start ``python -m servers`` (what ``rtplay serve`` runs) so that
the server and the clients + UI each get a core. :meth:`ServerProcess.launch` is synchronous
and cheap, so the CLI calls it before it imports the clients and both processes load their
libraries at the same time. The child writes one ``RTPLAY-READY {json}`` line once it
listens, on a pipe of its own (``--ready-fd``: never on a terminal a user reads);
:meth:`ServerProcess.wait_ready` reads the control URL from it. The child watches
its standard input, a pipe only the parent holds: however the parent ends (Ctrl-C, an
exception, SIGKILL), the pipe closes and the child stops itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import replace
from typing import IO, Any

from rtplay.protocol.options import READY_PREFIX, ServerOptions

log = logging.getLogger(__name__)

#: How long the child may take to print its ready line. Start-up is well under a second
#: (imports, a certificate, four listeners); this only catches a child that is stuck.
READY_TIMEOUT_S = 30.0

#: How long a stopping child may take after its stdin closes before it is terminated.
STOP_TIMEOUT_S = 3.0

#: Longest ready line accepted (it carries a certificate, ~1 KiB).
MAX_READY_LINE = 64 * 1024


class SpawnError(RuntimeError):
    """The server process did not start; the message says why."""


class ServerProcess:
    """One spawned ``python -m servers``."""

    def __init__(self, popen: subprocess.Popen[bytes], ready_pipe: IO[bytes]) -> None:
        self.popen = popen
        self.ready_pipe = ready_pipe
        """Where the child writes its ready line (closed once it is read, or at stop)."""
        self.ready: dict[str, Any] = {}
        """The ready line's JSON: the endpoints and ``control_url`` (empty until ready)."""
        self.launched_at = time.perf_counter()
        self.ready_at: float | None = None
        """``time.perf_counter()`` when the ready line was read (start-up figures)."""

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def control_url(self) -> str:
        return str(self.ready["control_url"])

    @classmethod
    def launch(cls, options: ServerOptions, stderr: int | IO[Any] | None = None) -> ServerProcess:
        """Start the server process now (no event loop needed); it gets ready on its own.

        It starts paused, whatever ``options.rate`` says: the session sets the rate once its
        clients are connecting, so every client sees the first message.
        """
        ready_read, ready_write = os.pipe()
        try:
            popen = subprocess.Popen(
                [sys.executable, "-m", "servers", *replace(options, rate=0.0).argv(), "--watch-stdin",
                 "--ready-fd", str(ready_write)],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr, pass_fds=(ready_write,),
                start_new_session=True,  # a Ctrl-C reaches the parent, which stops its child in order
            )
        except BaseException:
            os.close(ready_read)
            raise
        finally:
            os.close(ready_write)  # the child's copy is the only writer: its exit ends our read
        return cls(popen, os.fdopen(ready_read, "rb"))

    @classmethod
    async def start(cls, options: ServerOptions, stderr: int | IO[Any] | None = None) -> ServerProcess:
        """:meth:`launch` and :meth:`wait_ready`; the child is stopped if it never gets ready."""
        server = cls.launch(options, stderr)
        try:
            await server.wait_ready()
        except BaseException:
            await server.stop()
            raise
        return server

    async def wait_ready(self) -> dict[str, Any]:
        """The ready line's JSON; :class:`SpawnError` if the child dies or stays silent."""
        if self.ready:
            return self.ready
        try:
            # A thread reads the pipe: a child that hangs is killed below, which ends the read.
            async with asyncio.timeout(READY_TIMEOUT_S):
                self.ready = await asyncio.shield(asyncio.to_thread(self._read_ready))
                self.ready_at = time.perf_counter()
        except TimeoutError:
            self.popen.kill()
            raise SpawnError(f"the server printed no {READY_PREFIX} line within {READY_TIMEOUT_S:g} s") from None
        return self.ready

    def _read_ready(self) -> dict[str, Any]:
        while line := self.ready_pipe.readline(MAX_READY_LINE):
            word, _, rest = line.decode("utf-8", "replace").partition(" ")
            if word == READY_PREFIX:
                ready = json.loads(rest)
                if not isinstance(ready, dict) or "control_url" not in ready:
                    raise SpawnError(f"unexpected ready line: {rest[:80]!r}")
                return ready
        code = self.popen.wait()
        raise SpawnError(f"the server exited with status {code} before it was ready")

    async def stop(self) -> int:
        """Let the child go (close its stdin) and wait for it; terminate it if it lingers."""
        return await asyncio.to_thread(self.stop_now)

    def stop_now(self) -> int:
        """:meth:`stop`, blocking (for use where no event loop runs)."""
        popen = self.popen
        if popen.stdin is not None and not popen.stdin.closed:
            popen.stdin.close()
        for step in (None, popen.terminate, popen.kill):
            if step is not None:
                log.warning("server process %d did not stop; %s", popen.pid, step.__name__)
                step()
            try:
                code = popen.wait(STOP_TIMEOUT_S)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            code = popen.wait()
        self.ready_pipe.close()
        return code
