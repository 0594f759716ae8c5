"""The control token: how it travels and where its holder finds it (both sides share this).

A server bound beyond loopback answers its control API only to callers that send the token it
drew at start; ``rtplay serve`` prints it and stores it in a file only its user can read, so the
playground and scripts on the same machine find it by the control URL alone.

The file records the address it was written for (``host:port`` of the control listener) on its
second line, and :func:`find_token` hands the token only to that address: a ``--server`` URL
naming another host with the same port must never receive it.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from urllib.parse import urlsplit

from rtplay.runtime.loopback import is_loopback_host

#: Header carrying the control token (``Authorization: Bearer <token>`` works too).
TOKEN_HEADER = "X-Rtplay-Token"

#: The environment variable a caller may set instead of relying on the token file.
TOKEN_ENV = "RTPLAY_TOKEN"

#: Bind addresses that listen on every interface, loopback included.
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def new_token() -> str:
    """A fresh token (256 bits) in hex digits: a user passes it as ``--token TOKEN``, and a
    URL-safe token starts with ``-`` one time in 64, which a command line reads as an option
    (``rtplay run: error: argument --token: expected one argument``)."""
    return secrets.token_hex(32)


class TokenFileError(OSError):
    """The token file's path is unsafe to write (a symlink, or another user's file)."""


def token_path(control_port: int) -> Path:
    """Where the token of the server whose control API listens on ``control_port`` is kept: the
    user's runtime directory (``$XDG_RUNTIME_DIR``, private to them), else their state directory."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime else Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state"))
    return base / "rtplay" / f"control-{control_port}.token"


def _written_for(bound_host: str, port: int) -> str:
    host = bound_host.strip("[]").lower()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def write_token(path: Path, token: str, bound_host: str, port: int) -> None:
    """Store ``token`` for the control listener at ``bound_host:port``, readable by its user only.

    The file is created afresh with mode 0600 (an old file is removed first, so a 0644 left
    behind never receives the token); a symlink or a file owned by someone else at ``path`` is
    refused with :class:`TokenFileError` rather than followed or overwritten.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        existing = os.lstat(path)
    except FileNotFoundError:
        existing = None
    if existing is not None:
        if stat.S_ISLNK(existing.st_mode):
            raise TokenFileError(f"{path} is a symlink; refusing to write the control token through it")
        if existing.st_uid != os.geteuid():
            raise TokenFileError(f"{path} belongs to uid {existing.st_uid}; refusing to write the control token")
        path.unlink()
    # O_EXCL|O_NOFOLLOW: if anything appears at path between the unlink and here, fail, never follow.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)  # whatever the umask
        out.write(f"{token}\n{_written_for(bound_host, port)}\n")


def _address_matches(written_for: str, url_host: str, url_port: int) -> bool:
    host, _, port = written_for.rpartition(":")
    host = host.strip("[]")
    if not port.isdigit() or int(port) != url_port:
        return False
    wanted = url_host.strip("[]").lower()
    if wanted == host:
        return True
    # A server bound to a wildcard or to loopback is reached from this machine by any loopback name.
    return (host in WILDCARD_HOSTS or is_loopback_host(host)) and is_loopback_host(wanted)


def find_token(control_url: str, given: str | None = None) -> str | None:
    """The token to send to ``control_url``: ``given`` (``--token``), else ``$RTPLAY_TOKEN``, else
    the token file of a server on this machine at that URL's port, but only when the file was
    written for that host and port; None when there is none (loopback needs none)."""
    if given:
        return given
    if env := os.environ.get(TOKEN_ENV):
        return env
    url = urlsplit(control_url)
    try:
        port = url.port
    except ValueError:
        return None
    if port is None or url.hostname is None:
        return None
    try:
        lines = token_path(port).read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 2 or not lines[0].strip() or not _address_matches(lines[1].strip(), url.hostname, port):
        return None
    return lines[0].strip()
