"""The playground in target mode: a pane per target, unknown figures shown as unknown, the
fault keys acting at the proxy (or refused with --direct), each reconnect judged in the log."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from rtplay.engine.session import SessionConfig
from rtplay.engine.target_session import TargetConfig, TargetSession
from rtplay.model.identity import Identity, parse_seq
from rtplay.protocol.faults import Kind
from rtplay.tui.app import RtplayApp
from rtplay.tui.bars import FaultKeys
from rtplay.tui.target_backend import TargetBackend
from tests.engine.examples import example
from tests.tui.helpers import fault_keys, notice, pane_counters, pane_log, pane_status, status_bar, wait_for

SIZE = (120, 40)


def target_app(config: TargetConfig) -> RtplayApp:
    backend = TargetBackend(TargetSession(config))
    return RtplayApp(SessionConfig(transports=list(config.targets)), backend=backend)


async def test_a_pane_per_target_and_a_drop_judged_in_the_log(tmp_path: Path) -> None:
    with example("ws_server.py", tmp_path, "--rate", "50") as server:
        config = TargetConfig(
            {"ws": server.url, "sse": server.url.replace("ws://", "http://")},
            {"ws": Identity(parse_seq("json:seq"))},
            # Back after half a second: ~25 messages are published while it is away, so the
            # verdict is about them (an immediate retry can beat the next message).
            {"ws": {"retry": "fixed:0.5"}},
            direct=False,
        )
        app = target_app(config)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: pane_status(app, "ws").startswith("● open"), "ws open")
            assert "target mode, via rtplay's proxy" in status_bar(app)
            counters = pane_counters(app, "ws")
            assert "pending unknown" in counters and "p50 unknown" in counters  # no --time, no tail
            assert "lost unknown" not in counters  # a seq is stated: loss is measured
            await pilot.press("1", "d")  # select ws, drop it at the proxy
            await wait_for(pilot, lambda: "target no resume cursor: sent nothing missed" in pane_log(app, "ws"),
                           "the verdict in the log")
            # The other pane is an SSE client on a WebSocket endpoint: it fails as a browser would.
            await wait_for(pilot, lambda: "failed" in pane_status(app, "sse"), "sse failed")


async def test_direct_mode_strikes_and_refuses_server_side_faults(tmp_path: Path) -> None:
    with example("ws_server.py", tmp_path, "--rate", "50") as server:
        app = target_app(TargetConfig({"ws": server.url}, direct=True))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: pane_status(app, "ws").startswith("● open"), "ws open")
            counters = pane_counters(app, "ws")
            assert "delivered unknown" in counters and "lost unknown" in counters
            keys = app.main_screen.query_one(FaultKeys).data
            assert keys is not None and Kind.STALL in keys.unavailable and Kind.OFFLINE not in keys.unavailable
            assert "stall" in fault_keys(app)
            await pilot.press("s")
            await wait_for(pilot, lambda: "needs the proxy" in notice(app), "the refusal")
            await pilot.press("space")
            await wait_for(pilot, lambda: "rate not changed" in notice(app), "the rate refusal")
            await pilot.press("n")  # offline is the client's own: it applies
            await pilot.press("c")  # the compare view reads a target report
            await pilot.pause()
            from rtplay.tui.compare import CompareScreen

            screen = app.screen
            assert isinstance(screen, CompareScreen)
            table = screen.query_one(DataTable)
            rows = {str(row[0]): [str(c) for c in row[1:]] for row in map(table.get_row_at, range(table.row_count))}
            assert rows["lost"] == ["unknown"] and rows["latency p50 ms"] == ["unknown"]
