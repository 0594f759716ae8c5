"""Checks made before any work starts: a run that cannot finish well should not begin.

A report path in a missing directory, a port another program holds or a Chromium that is not
where ``RTPLAY_CHROMIUM`` says would otherwise surface after the whole run (a traceback at
the end) or only in a log file. Each check returns what is wrong, as one sentence the
command prints before it exits 2, or None when all is well.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

#: The environment variable naming the Chromium ``--browser`` drives.
CHROMIUM_ENV = "RTPLAY_CHROMIUM"


def unwritable(path: Path, flag: str) -> str | None:
    """Why ``flag``'s file ``path`` cannot be written, or None when it can."""
    target = path.expanduser()
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        return f"{flag} {path}: is a directory; give a file name"
    if not parent.is_dir():
        return f"{flag} {path}: the directory {parent} does not exist"
    if target.exists() and not os.access(target, os.W_OK):
        return f"{flag} {path}: not writable"
    if not target.exists() and not os.access(parent, os.W_OK | os.X_OK):
        return f"{flag} {path}: cannot create a file in {parent} (permission denied)"
    return None


def port_taken(host: str, port: int, flag: str, kind: int = socket.SOCK_STREAM) -> str | None:
    """Why ``port`` cannot be bound on ``host`` (e.g. another program holds it), or None.

    Port 0 (any free one) is always fine. Binding and releasing at once is what a listener
    does next, so what this finds is what that listener would meet.
    """
    if port == 0:
        return None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as probe:
        if kind == socket.SOCK_STREAM:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's servers do
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"{flag} {port}: the port is in use on {host} (another program listens there); pick another or 0"
            return f"{flag} {port}: cannot listen on {host}: {exc.strerror}"
    return None


def bad_chromium(environ: dict[str, str] | os._Environ[str]) -> str | None:
    """Why the Chromium that :data:`CHROMIUM_ENV` names cannot run, or None (unset: the default is looked up later)."""
    path = environ.get(CHROMIUM_ENV)
    if not path:
        return None
    if not os.path.isfile(path):
        return f"{CHROMIUM_ENV}={path}: no such file"
    if not os.access(path, os.X_OK):
        return f"{CHROMIUM_ENV}={path}: not executable"
    return None
