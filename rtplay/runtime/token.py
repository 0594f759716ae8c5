"""The control token: how it travels and where its holder finds it (both sides share this).

A server bound beyond loopback answers its control API only to callers that send the token it
drew at start; ``rtplay serve`` prints it and stores it in a file only its user can read, so the
playground and scripts on the same machine find it by the control port alone.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Header carrying the control token (``Authorization: Bearer <token>`` works too).
TOKEN_HEADER = "X-Rtplay-Token"

#: The environment variable a caller may set instead of relying on the token file.
TOKEN_ENV = "RTPLAY_TOKEN"


def token_path(control_port: int) -> Path:
    """Where the token of the server whose control API listens on ``control_port`` is kept: the
    user's runtime directory (``$XDG_RUNTIME_DIR``, private to them), else their state directory."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime else Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state"))
    return base / "rtplay" / f"control-{control_port}.token"


def find_token(control_port: int | None, given: str | None = None) -> str | None:
    """The token to send: ``given`` (``--token``), else ``$RTPLAY_TOKEN``, else the token file
    of a server on this machine at ``control_port``; None when there is none (loopback needs none)."""
    if given:
        return given
    if env := os.environ.get(TOKEN_ENV):
        return env
    if control_port is None:
        return None
    try:
        return token_path(control_port).read_text().strip() or None
    except OSError:
        return None
