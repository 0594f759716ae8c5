"""Helpers for the hostile probes: raw sockets on 127.0.0.1, strict JSON, small counts."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import httpx

from servers.runner import Server

HOST = "127.0.0.1"


def strict_json(text: str | bytes) -> Any:
    """Parse as a browser's JSON.parse would: NaN and Infinity are not JSON."""
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


async def control(server: Server, method: str, path: str, **kw: Any) -> httpx.Response:
    """A control request as the user's own tools make it (loopback Host, JSON content type)."""
    kw.setdefault("headers", {}).setdefault("Content-Type", "application/json")
    async with httpx.AsyncClient(trust_env=False) as http:
        return await http.request(method, server.control_url + path.removeprefix("/control"), **kw)


async def post_raw_json(server: Server, path: str, body: str) -> httpx.Response:
    return await control(server, "POST", path, content=body.encode())


async def exchange(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    """Send ``request`` on a fresh TCP connection and read until the server closes it."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(request)
        async with asyncio.timeout(timeout):
            return await reader.read(-1)
    finally:
        writer.close()


async def eof_within(sock: socket.socket, timeout: float) -> bool:
    """Does the server close ``sock`` (EOF or reset) within ``timeout``? Reads and discards."""
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    if not await loop.sock_recv(sock, 65536):
                        return True
                except ConnectionError:
                    return True
    except TimeoutError:
        return False
