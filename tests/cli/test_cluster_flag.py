"""``--cluster``: a crowd on a user's Dask scheduler; one that cannot be reached ends the run with 2."""

from __future__ import annotations

import socket
import subprocess
import sys


def test_a_crowd_scheduler_that_cannot_be_reached_exits_2_with_a_clear_message() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: connects are refused
    result = subprocess.run(
        [sys.executable, "-m", "rtplay.cli.main", "run", "--duration", "1", "--transports", "ws",
         "--clients", "10", "--cluster", f"tcp://127.0.0.1:{port}", "--quiet"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert f"rtplay run: crowd scheduler tcp://127.0.0.1:{port} unreachable" in result.stderr
    assert "Traceback" not in result.stderr
