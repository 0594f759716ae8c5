"""An outage (or a drop) ends many WebSockets at once: every peer hears it in the same pass,
and the listener's shutdown does not wait on, time out and cancel each aborted handler."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web, web_protocol

import servers.runner
from servers.runner import Server, ServerConfig
from tests.hostile.test_connections import ws_handshake

#: Enough WebSockets that one loop turn per close would show, few enough to open in a second.
SOCKETS = 200


def heard_end(sock: socket.socket) -> bool:
    """Has the peer's FIN (or reset) reached ``sock`` already? Reads what is there, never waits."""
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
    except BlockingIOError:
        return False
    except ConnectionError:
        return True
    return True


@pytest.fixture
async def crowd() -> AsyncIterator[tuple[Server, list[socket.socket]]]:
    """A server with SOCKETS open WebSockets (raw sockets, read by nobody)."""
    server = Server(ServerConfig(rate=0))
    await server.start()
    socks: list[socket.socket] = []
    try:
        for _ in range(SOCKETS // 20):
            socks += await asyncio.gather(*(asyncio.to_thread(ws_handshake, server.http_port) for _ in range(20)))
        while server.ctx.registry.count("ws") < SOCKETS:  # the handlers register after the 101
            await asyncio.sleep(0.01)
        yield server, socks
    finally:
        for sock in socks:
            sock.close()
        await server.stop()


async def test_a_drop_sends_every_peer_its_end_before_the_loop_turns(crowd: tuple[Server, list[socket.socket]]) -> None:
    server, socks = crowd
    assert server.drop("ws") == SOCKETS
    # No await since the drop: an abort alone closes each socket only on the loop's next turn,
    # after aiohttp's connection_lost for every one before it.
    assert sum(heard_end(s) for s in socks) == SOCKETS


async def test_an_outage_lets_the_aborted_handlers_end_instead_of_shutting_each_down(
    crowd: tuple[Server, list[socket.socket]], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    server, socks = crowd
    graceful: list[object] = []
    shutdown = web_protocol.RequestHandler.shutdown

    async def counted(handler: web_protocol.RequestHandler, timeout: float | None = 15.0) -> None:
        graceful.append(handler)
        await shutdown(handler, timeout)

    monkeypatch.setattr(web_protocol.RequestHandler, "shutdown", counted)
    # A turn of the loop can outlast the wait's progress window: 5,000 WebSockets' ends took
    # 0.19 s of turns. A window shorter than any turn makes every turn such a turn here.
    monkeypatch.setattr(servers.runner, "DROPPED_PROGRESS_S", 1e-6)
    with caplog.at_level(logging.INFO, logger="aiohttp.server"):
        await server.stop_listeners()  # what an outage fault runs
    assert not server.http_running and server.ctx.registry.count("ws") == 0
    assert all(heard_end(s) for s in socks)
    # aiohttp's graceful shutdown of a connection already aborted waited up to 0.5 s on each
    # handler, then cancelled it; one ending after that wait timed out raised InvalidStateError.
    # One still listed when the outage's wait ended cost that shutdown a task and a timeout.
    assert graceful == []
    assert "Unhandled exception" not in caplog.text and "InvalidStateError" not in caplog.text
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.http_port), timeout=1).close()


async def test_a_dropped_websocket_leaves_no_cycle_for_the_collector(crowd: tuple[Server, list[socket.socket]]) -> None:
    """aiohttp keeps the error that closed a WebSocket, whose traceback holds the response's
    own frames: a cycle per connection (the request, its transport, its reader) that waited
    for a full collection, a second of the core after an outage of 10,000."""
    server, _ = crowd
    gc.collect()
    gc.disable()  # nothing is collected: only what reference counting frees goes
    try:
        await server.stop_listeners()
        left = [o for o in gc.get_objects() if isinstance(o, web.WebSocketResponse)]
    finally:
        gc.enable()
    assert left == []
