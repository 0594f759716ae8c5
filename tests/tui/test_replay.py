"""``rtplay replay``: the playground's panes on a recorded run, and the player's keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rtplay.tui.app import RtplayApp
from rtplay.tui.model import Dashboard
from rtplay.tui.replay import SEEK_S, ReplayBackend, ReplayScreen, load_replay
from tests.report.conftest import recorded
from tests.tui.helpers import counter, fault_bar, notice, status_bar, wait_for

SIZE = (120, 40)


def figures(frame: Dashboard) -> dict[str, object]:
    """What the panes' counters say, per transport and channel."""
    return {
        f"{p.transport}/{c.name}": (c.delivered, c.lost, c.behind, c.lost_to_reset, c.duplicates, p.connects,
                                    p.reconnects)
        for p in frame.panes for c in p.channels
    }


def reported(report: dict[str, object]) -> dict[str, object]:
    out = {}
    for name, entry in report["transports"].items():  # type: ignore[attr-defined]
        for ch, c in (entry.get("channels") or {"main": entry}).items():
            out[f"{name}/{ch}"] = (c["delivered"], c["lost"], c["pending"], c["lost_to_reset"], c["duplicates"],
                                   entry["connects"], entry["reconnects"])
    return out


def test_the_panes_at_the_end_of_a_replay_show_the_runs_report(tmp_path: Path) -> None:
    run = recorded("run30", tmp_path)
    backend = ReplayBackend(run.records, "run30.jsonl", now=0.0)
    frame = backend.frame_at(backend.playback.end_at)
    assert figures(frame) == reported(run.report)
    assert frame.published == run.report["published"]
    for pane in frame.panes:
        entry = run.report["transports"][pane.transport]
        assert pane.downtime_s == round(entry["downtime_s"], 1), pane.transport
        primary = entry.get("channels", {}).get(pane.channels[0].name, entry)
        assert pane.channels[0].p99_ms == pytest.approx(primary["latency_ms"]["p99"], abs=0.001), pane.transport


def test_seeking_back_then_forward_draws_the_same_frames(tmp_path: Path) -> None:
    records = recorded("run30", tmp_path).records
    backend = ReplayBackend(records, "run30.jsonl", now=0.0)
    mid, end = 16.0, backend.playback.end_at
    first_mid = backend.frame_at(mid)
    first_end = backend.frame_at(end)
    assert backend.frame_at(mid) == first_mid  # charts, marks, logs and counters alike
    assert backend.frame_at(end) == first_end
    fresh = ReplayBackend(records, "run30.jsonl", now=0.0)
    assert fresh.frame_at(mid) == first_mid
    assert first_mid != first_end and first_mid.fault_rows  # mid-outage: the fault is on


async def test_the_player_keys_pause_seek_change_speed_and_jump_to_faults(tmp_path: Path) -> None:
    backend = load_replay(recorded("run30", tmp_path).log)
    app = RtplayApp(backend=backend, screen=ReplayScreen)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("space")
        await wait_for(pilot, lambda: "REPLAY ‖" in status_bar(app), "the header to say REPLAY, paused")

        def clock() -> float:
            match = re.search(r"run clock (\d+\.\d) / 30\.\d s", status_bar(app))
            assert match, status_bar(app)
            return float(match.group(1))

        paused_at = clock()
        await pilot.press("right")
        await wait_for(pilot, lambda: clock() == pytest.approx(paused_at + SEEK_S, abs=0.05), "a seek of +5 s")
        await pilot.press("left", "left")
        await wait_for(pilot, lambda: clock() == pytest.approx(max(0.0, paused_at - SEEK_S), abs=0.05), "-10 s")
        await pilot.press("f", "f")  # the drop at 6 s, then the outage at 14 s
        await wait_for(pilot, lambda: round(clock()) == 14, "the second fault")
        await wait_for(pilot, lambda: "outage 4s on all" in fault_bar(app), "the outage in the fault bar")
        await pilot.press("right_square_bracket", "right_square_bracket")
        await wait_for(pilot, lambda: "REPLAY ‖ 4×" in status_bar(app), "the speed doubled twice")
        await pilot.press("d")  # the playground's fault keys cannot change a recording
        await wait_for(pilot, lambda: "replay plays what was recorded" in notice(app), "the read-only notice")
        await pilot.press("f", "f")  # the loss at 20 s; then nothing after it
        await wait_for(pilot, lambda: round(clock()) == 20, "the third fault")
        while clock() < 30.0:
            await pilot.press("right")
        await wait_for(pilot, lambda: counter(app, "ws", "deliv") == 301, "the ws pane's final count")


async def test_a_recorded_playground_session_replays_with_its_own_figures(tmp_path: Path) -> None:
    """``rtplay --record FILE``: the session writes the message log as it runs; replayed, the
    panes end with the figures the session itself showed."""
    from rtplay.engine.message_log import read_log
    from rtplay.tui.backend import SessionBackend
    from tests.tui.helpers import make_config, pane_status

    record = tmp_path / "session.jsonl"
    config = make_config(["sse", "ws"])
    config.log_messages = record
    config.server.rate = 50
    app = RtplayApp(config)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.backend, SessionBackend)
        session = app.backend.session
        await wait_for(pilot, lambda: "ws" in session.clients, "the session's clients")
        ws = session.clients["ws"]
        await wait_for(pilot, lambda: ws.cursor >= 20, "ws messages")
        await pilot.press("2", "d")  # drop ws: a reconnect in the recording
        await wait_for(pilot, lambda: ws.conn.reconnects == 1 and pane_status(app, "ws").startswith("● open"),
                       "ws back")
        await pilot.press("space")  # pause publishing, then let both catch up
        await wait_for(pilot, lambda: session.rate == 0 and all(
            c.cursor >= session.published for c in session.clients.values()), "both caught up")
        shown = {n: {k: e[k] for k in ("delivered", "lost", "pending", "duplicates", "connects", "reconnects")}
                 for n, e in session.report()["transports"].items()}
    records = read_log(record)
    assert records[-1]["ev"] == "end" and any(r["ev"] == "fault_started" for r in records)
    backend = ReplayBackend(records, record.name, now=0.0)
    backend.frame_at(backend.playback.end_at)
    replayed = {n: {k: e[k] for k in ("delivered", "lost", "pending", "duplicates", "connects", "reconnects")}
                for n, e in backend.playback.report().items()}
    assert replayed == shown and shown["ws"]["reconnects"] == 1


async def test_the_help_of_a_replay_lists_the_players_keys(tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from rtplay.tui.views import HelpScreen, help_renderable

    app = RtplayApp(backend=load_replay(recorded("run30", tmp_path).log), screen=ReplayScreen)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        screen = app.screen
        assert isinstance(screen, HelpScreen)
        console = Console(width=120, file=io.StringIO(), record=True)
        console.print(help_renderable(120, screen.transports, screen.extra))
        text = console.export_text()
        assert "jump to the next fault" in text and "seek 5 s back / forward" in text
