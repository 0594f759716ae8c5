"""The Textual app: a thin shell that owns the backend's lifetime and nothing else.

``run_tui(config)`` is the ``rtplay`` entry point: it runs the app on one asyncio loop with
the session (server + clients), and stops the session on that same loop however the app
ends, so quitting leaves no task, socket or process behind.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import deque
from collections.abc import Iterable
from functools import partial
from typing import ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer

from rtplay.engine.session import Session, SessionConfig
from rtplay.runtime import eventloop
from rtplay.tui.actions import ACTIONS
from rtplay.tui.backend import Backend, SessionBackend
from rtplay.tui.browser_rows import BrowserRows
from rtplay.tui.main import MainScreen

log = logging.getLogger(__name__)

#: Seconds an engine warning stays in the fault bar.
NOTICE_S = 6.0

#: Warnings waiting to be shown; the oldest go first when the engine is noisy.
MAX_PENDING_NOTICES = 100


class NoticeHandler(logging.Handler):
    """Collects log records while the app owns the terminal (stderr would garble it)."""

    def __init__(self, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.pending: deque[logging.LogRecord] = deque(maxlen=MAX_PENDING_NOTICES)
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record for the next flush (bounded: the oldest go first)."""
        self.pending.append(record)

    def drain(self) -> list[logging.LogRecord]:
        """The records kept since the last drain."""
        records = list(self.pending)
        self.pending.clear()
        return records


class RtplayApp(App[int]):
    """rtplay's terminal UI. Give it a session config, or a backend (tests, snapshots)."""

    CSS_PATH = "rtplay.tcss"
    TITLE = "rtplay"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit", show=True),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
    ]

    def __init__(
        self,
        config: SessionConfig | None = None,
        *,
        backend: Backend | None = None,
        notices: NoticeHandler | None = None,
        browser: bool = False,
        freeze_heap: bool = False,
        screen: type[MainScreen] = MainScreen,
    ) -> None:
        super().__init__()
        self.freeze_heap = freeze_heap
        """Keep what start-up built out of the garbage collector's passes (``rtplay`` does;
        tests, which start many apps in one process, do not: frozen garbage is never freed)."""
        self.browser_wanted = browser
        """Start headless Chromium on the page once the session runs (``rtplay --browser``)."""
        self.browser_rows: BrowserRows | None = None
        self.backend: Backend = backend or SessionBackend(Session(config or SessionConfig()))
        self.main_screen = screen.for_transports(len(self.backend.transports))(self.backend)
        """The panes' screen (``screen``: :class:`MainScreen`, or a subclass such as replay's)."""
        self.notices = notices
        self.started_in: float | None = None
        """Seconds the session took to start (None until it has)."""

    def get_default_screen(self) -> Screen[None]:
        return self.main_screen

    def on_mount(self) -> None:
        if self.freeze_heap:  # see _start: the imports and the app are here to stay
            gc.freeze()
        self.run_worker(self._start(), name="session-start", group="session", exit_on_error=False)
        if self.notices is not None:
            self.set_interval(0.5, self._show_notices)

    async def _start(self) -> None:
        """Start the session off the message handlers (a worker), and say so if it cannot."""
        began = time.monotonic()
        try:
            await self.backend.start()
        except Exception as exc:  # e.g. the port is taken: tell the user and quit cleanly
            log.exception("session failed to start")
            self.exit(return_code=1, message=f"rtplay: cannot start the session: {exc}")
            return
        self.started_in = time.monotonic() - began
        log.info("session started in %.2f s", self.started_in)
        if self.freeze_heap:
            # Everything alive now (modules, the CSS, the session's clients and peers) lives
            # as long as the app: keep it out of the collector's full passes. Those walked
            # the whole heap every few seconds and held the loop 30-260 ms each, so the
            # header said the client was overloaded at 50 msg/s; now one takes ~10 ms.
            gc.freeze()
        if self.browser_wanted:
            await self.toggle_browser()

    async def toggle_browser(self) -> None:
        """Start headless Chromium on the page and show its rows, or stop it."""
        session = getattr(self.backend, "session", None)
        if session is None:
            self.main_screen.say("the browser needs a live session", "warning")
            return
        if self.browser_rows is not None:
            rows, self.browser_rows = self.browser_rows, None
            await rows.stop()
            await rows.remove()
            return
        self.browser_rows = BrowserRows(session)
        await self.main_screen.mount(self.browser_rows, before=self.main_screen.query_one(Footer))

    async def on_unmount(self) -> None:
        """The app is ending (quit, ctrl+c, test teardown): stop the browser and the session."""
        if self.browser_rows is not None:
            await self.browser_rows.stop()
        await self.backend.stop()

    def _show_notices(self) -> None:
        """The engine's warnings, in the fault bar (where a notice covers no pane)."""
        assert self.notices is not None
        records = self.notices.drain()
        if not records:
            return
        worst = max(records, key=lambda r: r.levelno)
        severity = "error" if worst.levelno >= logging.ERROR else "warning"
        more = f" (and {len(records) - 1} more warnings)" if len(records) > 1 else ""
        self.main_screen.say(self.notices.format(worst) + more, severity, timeout=NOTICE_S)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """The palette lists every playground action, not only Textual's own."""
        yield from super().get_system_commands(screen)
        main = self.main_screen
        names = [pane.transport for pane in main.panes]
        for action in ACTIONS:
            title = action.palette_title
            if action.action.startswith("select(") and action.action != "select(0)":
                number = int(action.action[len("select(") : -1])
                if number > len(names):
                    continue
                title = f"Select pane {number} ({names[number - 1]})"
            elif action.action == "select(0)":
                title = "Select all transports"
            keys = (
                action.keys.replace(",", " / ")
                if action.action.startswith("select(")
                else (action.key_display or action.keys)
            )
            yield SystemCommand(title, f"{action.help}  (key {keys})", partial(main.run_action, action.action))
        yield SystemCommand(
            "Browser: start / stop",
            "headless Chromium on the server's page: its clients' rows beside rtplay's panes",
            self.toggle_browser,
        )


def run_tui(config: SessionConfig, browser: bool = False, backend: Backend | None = None) -> int:
    """Run the playground on ``config`` (or on ``backend``: target mode) until the user quits;
    return the exit code."""
    notices = NoticeHandler()
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = [notices]  # nothing may write to the terminal the app draws on
    app = RtplayApp(config, backend=backend, notices=notices, browser=browser, freeze_heap=True)

    async def main() -> None:
        try:
            await app.run_async()
        finally:
            await app.backend.stop()  # already stopped on unmount; this covers a crash

    try:
        eventloop.run(main())
    finally:
        root.handlers = saved
    return app.return_code or 0
