"""The server as a child process: started, reached, stopped, never orphaned; and attaching."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from rtplay.engine.spawn import ServerProcess
from rtplay.protocol.options import ServerOptions
from servers.runner import Server
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


async def test_a_spawned_server_answers_and_stops_when_let_go() -> None:
    server = await ServerProcess.start(ServerOptions(rate=0))
    pid = server.pid
    try:
        async with httpx.AsyncClient(trust_env=False) as http:
            status = (await http.get(server.control_url + "/status")).json()
        assert status["endpoints"]["control_url"] == server.control_url
        assert status["endpoints"]["http_url"] == server.ready["http_url"]
    finally:
        assert await server.stop() == 0  # closing its stdin is enough: a clean exit
    assert gone(pid)


PARENT = """
import asyncio
from rtplay.protocol.options import ServerOptions
from rtplay.engine.spawn import ServerProcess

async def main():
    server = await ServerProcess.start(ServerOptions(rate=0))
    print(server.pid, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_a_killed_parent_leaves_no_orphan_server() -> None:
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PARENT, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    try:
        line = await asyncio.wait_for(parent.stdout.readline(), 20)  # type: ignore[union-attr]
        child = int(line)
        assert not gone(child)
    finally:
        parent.kill()  # SIGKILL: no handler, no finally, no atexit runs in the parent
        await parent.wait()
    await wait_until(lambda: gone(child), timeout=10, what="the orphaned server to stop itself")


async def test_ctrl_c_on_rtplay_run_stops_its_server_too() -> None:
    run = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtplay.cli.main", "run", "--duration", "30", "--transports", "sse", "--rate", "20",
        cwd=ROOT, stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        line = b""
        while b"published" not in line:  # the first progress line: everything is up
            line = await asyncio.wait_for(run.stderr.readline(), 20)  # type: ignore[union-attr]
            assert line, "rtplay run exited early"
        [server] = children(run.pid)
        run.send_signal(signal.SIGINT)
        await asyncio.wait_for(run.wait(), 20)
    finally:
        if run.returncode is None:
            run.kill()
            await run.wait()
    await wait_until(lambda: gone(server), timeout=10, what="the server to stop with rtplay run")


async def test_rtplay_run_attaches_to_a_running_server(server: Server, tmp_path: Path) -> None:
    server.set_rate(50)
    await wait_until(lambda: server.hub.last_seq >= 20, what="a backlog")
    before = server.hub.last_seq
    report_path = tmp_path / "report.json"
    run = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtplay.cli.main", "run", "--server", server.control_url, "--duration", "1",
        "--transports", "sse,ws", "--quiet", "--json", str(report_path),
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(run.communicate(), 30)
    assert run.returncode == 0, err.decode()
    report = json.loads(report_path.read_text())
    assert 0 < report["published"] <= server.hub.last_seq - before  # the messages since it attached …
    for entry in report["transports"].values():
        assert entry["delivered"] == report["published"] and entry["lost"] == 0  # … all of them
    assert server.publisher.rate == 50  # left publishing as it was found


#: What the command line must not load before it has launched its server: the two processes
#: load these at the same time only if the launch comes first (each is 0.1-0.4 s to import).
HEAVY = ("aiortc", "aioquic", "aiohttp", "httpx", "textual", "playwright", "rtplay.clients", "rtplay.engine.session")


def test_the_command_line_launches_its_server_before_loading_the_client_libraries() -> None:
    probe = "import sys, rtplay.cli.main; print(' '.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert sorted(set(result.stdout.split()) & set(HEAVY)) == []


async def test_poll_first_asks_once_its_spawned_server_publishes() -> None:
    """Its first poll must find messages: an empty one makes it wait a whole interval."""
    from rtplay.engine.session import Session, SessionConfig
    from rtplay.model.events import Connecting, Event

    session = Session(SessionConfig(transports=["poll", "ws"], server=ServerOptions(rate=50)))
    rate_at_first_ask: dict[str, float] = {}

    def on_event(event: Event) -> None:
        if isinstance(event, Connecting):
            rate_at_first_ask.setdefault(event.transport, session.rate)

    session.subscribe(on_event)
    try:
        await session.start()
        await wait_until(lambda: session.clients["poll"].stats["main"].tracker.delivered > 0, what="a poll answer")
    finally:
        await session.stop()
    assert rate_at_first_ask == {"ws": 0.0, "poll": 50.0}  # ws subscribes before seq 1, poll asks after it


async def test_publishing_waits_for_the_slowest_connection_so_no_client_replays_its_start() -> None:
    """WebRTC opens ~0.4 s after the rest; had seq 1 gone out before, its start-up catch-up
    would be its p99 at 50 msg/s (~200 ms where the steady state is a few)."""
    from rtplay.engine.session import Session, SessionConfig
    from rtplay.model.events import State

    session = Session(SessionConfig(transports=["ws", "rtc"], server=ServerOptions(rate=50)))
    try:
        await session.start()
        opened = {name: client.state for name, client in session.clients.items()}
        rtc = session.clients["rtc"]
        await wait_until(lambda: rtc.stats[rtc.channels[0]].tracker.delivered > 0, what="a WebRTC message")
    finally:
        await session.stop()
    assert opened == {"ws": State.OPEN, "rtc": State.OPEN}


STARTS_WITHOUT_WEBRTC = """
import asyncio, sys
from servers.runner import Server, ServerConfig

async def main():
    server = Server(ServerConfig(rate=0))
    await server.start()
    loaded = [m for m in ("aiortc", "aioice", "servers.rtc.peer") if m in sys.modules]
    await server.stop()
    print(" ".join(loaded) or "none")

asyncio.run(main())
"""


def test_the_server_listens_before_it_loads_webrtc() -> None:
    """aiortc (~0.3 s to import) is loaded after the ready line, so the other five start sooner."""
    result = subprocess.run(
        [sys.executable, "-c", STARTS_WITHOUT_WEBRTC], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["none"]


async def test_a_spawned_server_answers_webrtc_offers_once_it_has_loaded_webrtc() -> None:
    from rtplay.engine.session import Session, SessionConfig

    session = Session(SessionConfig(transports=["rtc"], server=ServerOptions(rate=50)))
    try:
        await session.start()
        client = session.clients["rtc"]
        await wait_until(lambda: client.stats[client.channels[0]].tracker.delivered > 0, what="a WebRTC message")
    finally:
        await session.stop()


BROKEN_WEBRTC = """
import sys
from rtplay.compat import IncompatibleLibrary, aioice

def check():
    raise IncompatibleLibrary("aioice 0.0 lacks everything")

aioice.check = check
from servers.__main__ import main
sys.exit(main(["--rate", "0"]))
"""


def test_a_webrtc_library_that_fails_its_check_after_the_ready_line_still_stops_the_server() -> None:
    result = subprocess.run(
        [sys.executable, "-c", BROKEN_WEBRTC], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.stdout.startswith("rtplay server publishing")  # five transports were up meanwhile
    assert (result.returncode, result.stderr.strip()) == (2, "rtplay serve: aioice 0.0 lacks everything")


def test_serve_keeps_the_hand_off_line_off_the_terminal_and_gives_it_to_a_parent_on_its_fd() -> None:
    """A person running `rtplay serve` reads where to connect, not a line of JSON meant for a
    spawning parent; a parent passing --ready-fd gets exactly that line there."""
    read_end, write_end = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "servers", "--rate", "0", "--ready-fd", str(write_end)],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, pass_fds=(write_end,),
        )
    finally:
        os.close(write_end)
    try:
        with os.fdopen(read_end, encoding="utf-8") as ready:
            handed = ready.readline()
        assert handed.startswith("RTPLAY-READY {")
        assert "control_url" in json.loads(handed.split(" ", 1)[1])
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    assert "RTPLAY-READY" not in out
    bare = subprocess.Popen(
        [sys.executable, "-m", "servers", "--rate", "0"], cwd=ROOT, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, text=True,
    )
    assert bare.stdout is not None
    first = bare.stdout.readline()
    bare.send_signal(signal.SIGINT)
    rest, _ = bare.communicate(timeout=30)
    assert first.startswith("rtplay server publishing") and "RTPLAY-READY" not in first + rest
