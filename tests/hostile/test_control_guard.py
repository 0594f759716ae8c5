"""Probe 2: a web page the user visits (or a host on the network) must not drive /control."""

from __future__ import annotations

import httpx
import pytest

from servers.runner import Server, ServerConfig
from tests.hostile.conftest import HOST, control


async def raw(server: Server, method: str, path: str, **kw: object) -> httpx.Response:
    async with httpx.AsyncClient(trust_env=False) as http:
        return await http.request(method, server.control_url + path.removeprefix("/control"), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("headers", "content"),
    [
        ({"Content-Type": "text/plain"}, b'{"rate": 999}'),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"rate=999"),
        ({}, b'{"rate": 999}'),
    ],
)
async def test_simple_cross_origin_posts_are_refused(server: Server, headers: dict[str, str], content: bytes) -> None:
    headers = {"Origin": "http://evil.example", **headers}
    response = await raw(server, "POST", "/control/rate", headers=headers, content=content)
    assert response.status_code in (403, 415)
    assert "Access-Control-Allow-Origin" not in response.headers
    assert server.publisher.rate == 0


async def test_no_cors_on_control_not_even_for_a_preflight(server: Server) -> None:
    preflight = await raw(
        server, "OPTIONS", "/control/faults",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers
    drop = await raw(server, "POST", "/control/faults", headers={"Origin": "http://evil.example",
                     "Content-Type": "application/json"}, content=b'{"kind": "drop"}')
    assert drop.status_code == 403 and "Access-Control-Allow-Origin" not in drop.headers


async def test_a_foreign_host_header_is_refused(server: Server) -> None:
    """DNS rebinding: a page at evil.example whose name now resolves to 127.0.0.1."""
    response = await raw(server, "POST", "/control/rate", json={"rate": 5},
                         headers={"Host": f"evil.example:{server.control.port}"})
    assert response.status_code == 403 and server.publisher.rate == 0
    same = await raw(server, "POST", "/control/rate", json={"rate": 5},
                     headers={"Origin": server.control_url.removesuffix("/control")})
    assert same.status_code == 200 and server.publisher.rate == 5


def test_binding_beyond_loopback_requires_a_token() -> None:
    assert Server(ServerConfig(host="0.0.0.0")).guard.require_token
    assert not Server(ServerConfig(host=HOST)).guard.require_token
    a, b = Server(ServerConfig()), Server(ServerConfig())
    assert a.guard.token != b.guard.token and len(a.guard.token) >= 32


async def test_with_a_token_required_only_its_holder_gets_in() -> None:
    from rtplay.runtime.token import TOKEN_HEADER
    server = Server(ServerConfig(rate=0))
    server.guard.require_token = True  # what binding beyond loopback does (tests stay on loopback)
    await server.start()
    try:
        assert (await control(server, "POST", "/control/rate", json={"rate": 7})).status_code == 401
        wrong = await control(server, "POST", "/control/rate", json={"rate": 7}, headers={TOKEN_HEADER: "guess"})
        assert wrong.status_code == 401 and server.publisher.rate == 0
        ok = await control(server, "POST", "/control/rate", json={"rate": 7}, headers={TOKEN_HEADER: server.guard.token})
        assert ok.status_code == 200 and server.publisher.rate == 7
    finally:
        await server.stop()


async def test_the_session_side_finds_the_token_by_flag_environment_or_file(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rtplay.engine.control_client import ControlClient, ControlError
    from rtplay.runtime.token import TOKEN_ENV, token_path, write_token

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    server = Server(ServerConfig(rate=0))
    server.guard.require_token = True  # what binding beyond loopback does (tests stay on loopback)
    await server.start()
    try:
        async def rate_via(client: ControlClient, rate: float) -> None:
            try:
                await client._call("POST", "/rate", {"rate": rate})
            finally:
                await client.aclose()

        with pytest.raises(ControlError, match="401"):
            await rate_via(ControlClient(server.control_url), 3)
        await rate_via(ControlClient(server.control_url, server.guard.token), 4)  # --token
        assert server.publisher.rate == 4
        monkeypatch.setenv(TOKEN_ENV, server.guard.token)
        await rate_via(ControlClient(server.control_url), 5)  # $RTPLAY_TOKEN
        assert server.publisher.rate == 5
        monkeypatch.delenv(TOKEN_ENV)
        write_token(token_path(server.control.port), server.guard.token, HOST, server.control.port)  # what `rtplay serve` writes
        await rate_via(ControlClient(server.control_url), 6)
        assert server.publisher.rate == 6
    finally:
        await server.stop()
