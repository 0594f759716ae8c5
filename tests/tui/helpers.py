"""What the user sees, read from the widgets, and waiting for it to change."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot
from textual.widget import Widget

from rtplay.engine.session import SessionConfig
from rtplay.tui.app import RtplayApp
from rtplay.tui.bars import FaultBar, FaultKeys, StatusBar
from rtplay.tui.main import MainScreen
from rtplay.tui.panes import LOG_TIME_CELLS, Counters, PaneStatus, RetryLog
from tests.conftest import fast_client_options, fast_server_options


def make_config(transports: list[str], **options: dict[str, Any]) -> SessionConfig:
    """A session on 127.0.0.1 with fast retry timers, publishing nothing until told."""
    client_options = fast_client_options() | options
    return SessionConfig(transports=transports, server=fast_server_options(), client_options=client_options)


def shown(widget: Widget) -> str:
    """The plain text a widget draws."""
    return widget.render().plain.replace("\u00a0", " ")  # type: ignore[union-attr]


def main_screen(app: RtplayApp) -> MainScreen:
    return app.main_screen


def unwrap(text: str, indent: int) -> str:
    """``text`` with its wrapped continuation lines (indented by ``indent``) joined back."""
    return re.sub(rf"\n {{{indent}}}(?=\S)", " ", text)


def pane_status(app: RtplayApp, transport: str) -> str:
    """The status line as one line, however it is wrapped on screen."""
    return unwrap(shown(main_screen(app).query_one(f"#pane-{transport} PaneStatus", PaneStatus)), 2)


def pane_log(app: RtplayApp, transport: str) -> str:
    """The retry log, one entry per line, however the entries are wrapped on screen."""
    return unwrap(shown(main_screen(app).query_one(f"#pane-{transport} RetryLog", RetryLog)), LOG_TIME_CELLS)


def pane_counters(app: RtplayApp, transport: str) -> str:
    return shown(main_screen(app).query_one(f"#pane-{transport} Counters", Counters))


def counter(app: RtplayApp, transport: str, label: str) -> int:
    """A counter as the pane shows it, e.g. ``counter(app, "ws", "delivered")``."""
    match = re.search(rf"\b{re.escape(label)} +(\d+)", pane_counters(app, transport))
    assert match, f"no {label} counter in the {transport} pane"
    return int(match.group(1))


def fault_bar(app: RtplayApp) -> str:
    """The fault bar without the notice it may show at its end."""
    bar = main_screen(app).query_one(FaultBar)
    text = shown(bar)
    return text.replace(bar.notice.text, "") if bar.notice is not None else text


def fault_keys(app: RtplayApp) -> str:
    return shown(main_screen(app).query_one(FaultKeys))


def status_bar(app: RtplayApp) -> str:
    return shown(main_screen(app).query_one(StatusBar))


def notice(app: RtplayApp, severity: str = "error") -> str:
    """The notice in the fault bar when it has ``severity`` ("" otherwise)."""
    current = main_screen(app).query_one(FaultBar).notice
    return current.text if current is not None and current.severity == severity else ""


async def wait_for(pilot: Pilot[Any], predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Let the app run until ``predicate`` holds; fail with ``what`` after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await pilot.pause(0.02)
