"""``rtplay run --target``: bad usage and unreachable targets exit 2 before the run; unknown
figures read unknown; unreadable messages are counted, never a crash."""

from __future__ import annotations

import asyncio
import gc
import json
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve

from rtplay.cli.main import main
from rtplay.engine.target_session import TargetConfig, TargetSession
from rtplay.model.identity import MAX_MESSAGE_BYTES, Identity, parse_seq
from tests.engine.examples import example


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--target", "sse=http://127.0.0.1:1/events"],
         "sse target http://127.0.0.1:1/events is down: connection refused"),
        (["--target", "ws=ws://127.0.0.1:1/x", "--fault", "delay=100ms@1s"],
         "acts on the server side: it needs rtplay's proxy"),
        (["--target", "sse=http://127.0.0.1:1/e", "--seq", "ws=json:seq"], "there is no --target ws=URL"),
        (["--target", "ws=ws://127.0.0.1:1/x", "--seq", "ws=sse-id"], "only an SSE stream has event ids"),
        (["--target", "ws=ws://127.0.0.1:1/x", "--fault", "drop@1s:sse"], "no target for sse"),
        (["--target", "ws=ws://127.0.0.1:1/x", "--rate", "5"], "--rate cannot apply in target mode"),
        (["--target", "ws=ws://127.0.0.1:1/x", "--clients", "501"], "at most 500 clients per target"),
    ],
)
def test_a_run_that_cannot_happen_exits_2_with_a_clear_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--direct", "--quiet", "--duration", "2", *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--target", "wt=https://127.0.0.1:1/x"], "target mode drives poll, longpoll, sse, ws"),
        (["--target", "ws=ws://127.0.0.1:1/x", "--resume", "ws=?since=1"], "must contain {seq}"),
        (["--target", "ws=ws://127.0.0.1:1/x", "--time", "ws=json:t:hours"], "expected ms, s or iso"),
    ],
)
def test_bad_target_flags_are_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_without_seq_loss_is_unknown_in_the_table_and_the_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_path = tmp_path / "report.json"
    with example("ws_server.py", tmp_path, "--rate", "50") as server:
        argv = ["--duration", "1", "--target", f"ws={server.url}", "--json", str(report_path)]
        code = main(["run", "--direct", "--quiet", *argv])
    assert code == 0
    entry = json.loads(report_path.read_text())["transports"]["ws"]
    assert entry["messages"] > 0
    assert entry["lost"] is None and entry["delivered"] is None
    assert entry["unknown"]["lost"] == "--seq ws=json:PATH"
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("ws "))
    assert row.split()[3:5] == ["unknown", "unknown"]  # delivered, lost
    assert "lost, duplicates, out_of_order (needs --seq ws=json:PATH)" in " ".join(out.split())


def test_an_expectation_on_an_unknown_figure_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "target.toml"
    with example("ws_server.py", tmp_path, "--rate", "50") as server:
        scenario.write_text(f'duration = 1\n[target.ws]\nurl = "{server.url}"\n[expect.ws]\nlost = 0\n')
        code = main(["run", "--direct", "--quiet", str(scenario)])
    assert code == 1
    assert "ws.lost == 0: no value (nothing measured)" in capsys.readouterr().err


async def test_non_json_and_oversized_messages_are_counted_and_the_client_goes_on() -> None:
    connections = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            await ws.send(json.dumps({"seq": 1}))
            await ws.send("not json")
            await ws.send(json.dumps({"no": "seq"}))
            await ws.send("x" * (MAX_MESSAGE_BYTES + 10))  # the client closes with 1009
            await ws.wait_closed()
        else:
            await ws.send(json.dumps({"seq": 2}))
            await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = list(server.sockets)[0].getsockname()[1]
        config = TargetConfig({"ws": f"ws://127.0.0.1:{port}/"}, {"ws": Identity(parse_seq("json:seq"))},
                              {"ws": {"retry": "immediate"}})
        session = TargetSession(config)
        await session.start()
        second = asyncio.Event()
        session.taps["ws"].arrival_hook = lambda message, _: second.set() if message.seq == 2 else None
        try:
            async with asyncio.timeout(10):
                await second.wait()
            report = session.report()
        finally:
            await session.stop()
    entry = report["transports"]["ws"]
    assert entry["unreadable"] == {"not_json": 1, "no_seq": 1, "no_time": 0, "oversized": 1}
    assert (entry["messages"], entry["delivered"], entry["lost"]) == (5, 2, 0)
    assert entry["reconnects"] == 1


async def test_an_sse_event_beyond_the_parsers_bounds_is_counted_oversized_and_the_stream_resumes() -> None:
    from aiohttp import web

    from rtplay.model.eventsource import MAX_LINE_CHARS

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if request.headers.get("Last-Event-ID") != "1":
            await response.write(b"retry: 10\nid: 1\ndata: one\n\n")
            await response.write(b"data: " + b"x" * (MAX_MESSAGE_BYTES + 10) + b"\n\n")  # counted, skipped
            await response.write(b"data: ")  # a line that never ends: the parser's bound cuts it
            for _ in range(MAX_LINE_CHARS // 65536 + 2):
                await response.write(b"x" * 65536)
        else:
            await response.write(b"id: 2\ndata: two\n\n")
        await asyncio.sleep(30)
        return response

    app = web.Application()
    app.router.add_get("/events", events)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/events"
    session = TargetSession(TargetConfig({"sse": url}, {"sse": Identity(parse_seq("sse-id"))}))
    await session.start()
    second = asyncio.Event()
    session.taps["sse"].arrival_hook = lambda message, _: second.set() if message.seq == 2 else None
    try:
        async with asyncio.timeout(10):
            await second.wait()
        entry = session.report()["transports"]["sse"]
    finally:
        await session.stop()
        await runner.cleanup()
    assert entry["unreadable"]["oversized"] == 2
    assert (entry["delivered"], entry["lost"], entry["reconnects"]) == (2, 0, 1)
    assert entry["resumption"][0]["outcome"] == "resumed"


def test_a_target_run_keeps_its_start_up_heap_out_of_full_collections(tmp_path: Path) -> None:
    """As ``rtplay run`` against rtplay's own server: every collection during the run finds
    what start-up built frozen, and the heap is thawed once the run is over."""
    frozen_at_collections: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            frozen_at_collections.append(gc.get_freeze_count())

    with example("ws_server.py", tmp_path, "--rate", "50") as server:
        thresholds = gc.get_threshold()
        gc.set_threshold(100, 10, 10)  # collect often, so the run's own collections are seen
        gc.callbacks.append(seen)
        try:
            code = main(["run", "--direct", "--quiet", "--duration", "1", "--target", f"ws={server.url}"])
        finally:
            gc.callbacks.remove(seen)
            gc.set_threshold(*thresholds)
    assert code == 0
    assert max(frozen_at_collections, default=0) > 10_000  # the imports, the session, its clients
    assert gc.get_freeze_count() == 0
