"""Probes 11 and 12: cancellation reaches the SSE handler, a failed start or re-bind is
cleaned up or retried, and the CLI stops cleanly (Ctrl-C, busy port, bad scenario)."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request

from rtplay.cli.scenario import ScenarioError, parse_scenario
from rtplay.protocol.faults import Kind
from servers.http.sse import sse
from servers.runner import Server, ServerConfig
from tests.conftest import wait_until
from tests.hostile.conftest import HOST

# --- 11: async hygiene ---------------------------------------------------------------------


async def test_cancelling_an_sse_handler_cancels_it(server: Server) -> None:
    app = server.app()
    assert app is not None
    request = make_mocked_request("GET", "/sse", app=app)
    handler = asyncio.create_task(sse(request))
    await wait_until(lambda: server.ctx.registry.count("sse") == 1, what="the handler streaming")
    handler.cancel()
    await asyncio.gather(handler, return_exceptions=True)
    assert handler.cancelled(), "the SSE handler swallowed its cancellation"
    assert server.broadcaster.subscriber_count == 0


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


async def test_a_start_that_fails_half_way_leaves_nothing_listening() -> None:
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind((HOST, 0))
    http_port = free_tcp_port()
    server = Server(ServerConfig(rate=0, http_port=http_port, quic_port=busy.getsockname()[1]))
    try:
        with pytest.raises(OSError):
            await server.start()
        assert not server.http_running
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(HOST, http_port)
    finally:
        busy.close()
        await server.stop()


async def test_a_failed_rebind_after_an_outage_is_logged_and_retried(
    server: Server, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("servers.runner.REBIND_RETRY_S", 0.05, raising=False)
    caplog.set_level(logging.WARNING)
    port = server.http_port
    server.add_fault(Kind.OUTAGE, value=60)
    await wait_until(lambda: not server.http_running, what="the outage")
    squatter = socket.socket()
    squatter.bind((HOST, port))
    squatter.listen()
    try:
        server.clear_faults()
        await wait_until(lambda: "cannot listen again" in caplog.text, timeout=3, what="a warning")
    finally:
        squatter.close()
    await wait_until(lambda: server.http_running, timeout=3, what="the listener back")


# --- 12: the CLI ---------------------------------------------------------------------------

RTPLAY = [sys.executable, "-m", "rtplay.cli.main"]


@pytest.mark.parametrize(
    ("expect", "message"),
    [('lost = "about 0"', "cannot read 'about 0'"), ('"latency_ms.p42" = "< 5"', "no 'latency_ms.p42'"),
     ('"channels.datagram.lost" = 0', "no 'channels.datagram.lost'")],
)
def test_bad_expectations_are_refused_before_the_run(expect: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(f'transports = ["sse"]\n[expect.sse]\n{expect}\n', "bad.toml")


def test_a_busy_port_exits_2_with_a_message() -> None:
    with socket.socket() as squatter:
        squatter.bind((HOST, 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = subprocess.run(
            [*RTPLAY, "run", "--http-port", str(port), "--transports", "poll", "--duration", "1", "--quiet"],
            capture_output=True, text=True, timeout=60,
        )
    assert result.returncode == 2, result.stderr
    assert "port is in use" in result.stderr and "Traceback" not in result.stderr


async def test_ctrl_c_during_run_writes_a_partial_report_and_exits_130(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    proc = await asyncio.create_subprocess_exec(
        *RTPLAY, "run", "--transports", "poll", "--duration", "60", "--json", str(report),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        async with asyncio.timeout(30):
            while b"published" not in await proc.stderr.readline():  # the first progress line
                pass
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err and b"transport" in out
    assert json.loads(report.read_text())["partial"] is True


async def test_stopping_the_publisher_does_not_swallow_the_callers_cancellation() -> None:
    from servers.core.hub import Hub
    from servers.core.pubsub import Broadcaster, Publisher

    publisher = Publisher(Broadcaster(Hub()), rate=10)
    publisher.start()
    stopping = asyncio.create_task(publisher.stop())
    await asyncio.sleep(0)  # stop() is now waiting for the publisher task
    stopping.cancel()
    await asyncio.gather(stopping, return_exceptions=True)
    assert stopping.cancelled(), "Publisher.stop() swallowed the cancellation of its caller"
