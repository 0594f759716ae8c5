"""The playground on a proxy: ``rtplay proxy UPSTREAM`` with a pane per proxied route and kind.

A thin app: the :class:`~rtplay.proxy.run.ProxyRun` (proxy, Toxiproxy API, fault timeline)
runs on the app's loop; the screen redraws from its wire view on a timer (4 Hz, never per
message) and its keys add or remove toxics, as the Toxiproxy API would.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from rtplay.proxy.run import ProxyRun
from rtplay.runtime import eventloop
from rtplay.tui.proxy_panes import clients_text, route_text, toxics_text

#: Redraws per second: the wire view changes per message; people read a few times a second.
REFRESH_HZ = 4

#: The kinds the fault keys cycle through.
KIND_CYCLE = ("all", "sse", "ws", "http")

#: Each fault key: (toxic type, attributes) added for the selected kind, removed on a second press.
FAULT_KEYS: dict[str, tuple[str, dict[str, float]]] = {
    "stall": ("stall", {}),
    "delay": ("delay", {"delay": 300, "jitter": 50}),
    "error": ("error", {"status": 503, "retry_after": 2}),
    "loss": ("loss", {"percent": 20}),
    "duplicate": ("duplicate", {"percent": 20}),
    "reorder": ("reorder", {"percent": 20}),
    "throttle": ("throttle", {"rate": 1}),
}


class ProxyScreen(Screen[None]):
    """Routes, clients and the fault bar of one proxy."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d", "drop", "drop"),
        Binding("s", "toggle_fault('stall')", "stall"),
        Binding("l", "toggle_fault('delay')", "delay"),
        Binding("e", "toggle_fault('error')", "503"),
        Binding("o", "outage", "outage"),
        Binding("x", "toggle_fault('loss')", "loss"),
        Binding("u", "toggle_fault('duplicate')", "dup"),
        Binding("r", "toggle_fault('reorder')", "reorder"),
        Binding("t", "toggle_fault('throttle')", "throttle"),
        Binding("k", "kind", "kind"),
        Binding("c", "clear", "clear"),
        Binding("q", "quit", "quit"),
    ]

    DEFAULT_CSS = """
    #banner { height: auto; background: $boost; padding: 0 1; }
    #faults { height: auto; padding: 0 1; }
    #routes { height: 1fr; }
    .route { border: round $accent; height: auto; padding: 0 1; }
    #clients { height: 1fr; border: round $secondary; padding: 0 1; }
    """

    def __init__(self, run: ProxyRun) -> None:
        super().__init__()
        self.proxy_run = run
        self.kind = "all"
        self._panes: dict[tuple[str, str], Static] = {}

    def compose(self) -> ComposeResult:
        """The banner, the fault bar, the route panes and the clients."""
        yield Static(self.proxy_run.banner(), id="banner")
        yield Static("", id="faults")
        with Vertical():
            yield VerticalScroll(id="routes")
            yield VerticalScroll(Static("", id="clients-body"), id="clients")
        yield Footer()

    def on_mount(self) -> None:
        """Start the redraw timer."""
        self.query_one("#clients", VerticalScroll).border_title = "clients: what they decided"
        self.set_interval(1 / REFRESH_HZ, self.refresh_view)
        self.refresh_view()

    def refresh_view(self) -> None:
        """Redraw from the wire view (on the timer, and after a key)."""
        wire = self.proxy_run.proxy.wire_json()
        proxy = self.proxy_run.proxy.to_json()
        self.query_one("#faults", Static).update(toxics_text(proxy["toxics"], self.kind, proxy["enabled"]))
        routes = self.query_one("#routes", VerticalScroll)
        for route in wire["routes"]:
            key = (route["path"], route["kind"])
            pane = self._panes.get(key)
            if pane is None:
                pane = self._panes[key] = Static(classes="route")
                pane.border_title = f"{route['path']} · {route['kind']}"
                routes.mount(pane)
            pane.update(route_text(route))
        self.query_one("#clients-body", Static).update(clients_text(wire["clients"]))

    def _toxic_name(self, fault: str) -> str:
        return f"{fault}_{self.kind}"

    def action_toggle_fault(self, fault: str) -> None:
        """Add ``fault`` for the selected kind, or remove it if it is on."""
        toxics = self.proxy_run.proxy.toxics
        name = self._toxic_name(fault)
        if any(t.name == name for t in toxics):
            toxics.remove(name)
        else:
            type_, attributes = FAULT_KEYS[fault]
            self.proxy_run.proxy.add_toxic(name, type_, attributes, self.kind)
        self.refresh_view()

    def action_drop(self) -> None:
        """Abort the selected kind's live connections (one-shot)."""
        name = self._toxic_name("drop")
        self.proxy_run.proxy.add_toxic(name, "drop", {}, self.kind)
        self.proxy_run.proxy.toxics.remove(name)  # one-shot: it aborted what was live
        self.refresh_view()

    def action_outage(self) -> None:
        """Take the listener down for 5 s."""
        if not any(t.type == "outage" for t in self.proxy_run.proxy.toxics):
            self.proxy_run.proxy.add_toxic("outage", "outage", {"seconds": 5}, "all")
        self.refresh_view()

    def action_kind(self) -> None:
        """Cycle the kind of traffic the fault keys act on."""
        self.kind = KIND_CYCLE[(KIND_CYCLE.index(self.kind) + 1) % len(KIND_CYCLE)]
        self.refresh_view()

    def action_clear(self) -> None:
        """Remove every fault and listen again."""
        self.proxy_run.proxy.reset()
        self.refresh_view()

    async def action_quit(self) -> None:
        """Quit (the run stops on unmount)."""
        self.app.exit(0)


class ProxyApp(App[int]):
    """The proxy playground; it owns the run's lifetime."""

    TITLE = "rtplay proxy"

    def __init__(self, run: ProxyRun) -> None:
        super().__init__()
        self.proxy_run = run
        self._started = False

    async def on_mount(self) -> None:
        """Start the run (a port in use ends the app with code 2), then show it."""
        try:
            await self.proxy_run.start()  # binding two listeners: quick, and the screen needs them
        except OSError as exc:  # a port in use: say so, as headless mode does
            self.exit(return_code=2, message=f"rtplay proxy: cannot listen: {exc.strerror or exc}")
            return
        self._started = True
        await self.push_screen(ProxyScreen(self.proxy_run))

    async def on_unmount(self) -> None:
        """Stop the run on the app's own loop."""
        if self._started:
            self._started = False
            await self.proxy_run.stop()


def run_proxy_tui(run: ProxyRun) -> int:
    """Run the proxy playground until the user quits."""
    app = ProxyApp(run)
    eventloop.run(app.run_async())
    return app.return_code or 0
