"""The textual-serve compat module: its start-up check and the routes it adds."""

from __future__ import annotations

import importlib.metadata

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from textual_serve.server import Server

from rtplay.compat import IncompatibleLibrary
from rtplay.compat.textual_serve import RoutedServer, check, web_app


def test_a_server_without_its_make_app_is_refused_by_name_and_version(monkeypatch: pytest.MonkeyPatch) -> None:
    check()  # the installed one has it
    monkeypatch.delattr(Server, "_make_app")
    version = importlib.metadata.version("textual-serve")
    with pytest.raises(IncompatibleLibrary, match=rf"textual-serve {version} lacks Server._make_app"):
        check()


async def test_extra_routes_are_served_beside_textual_serves_own() -> None:
    class Extra(RoutedServer):
        def extra_routes(self) -> list[web.RouteDef]:
            return [web.get("/extra", self.extra)]

        async def extra(self, request: web.Request) -> web.Response:
            return web.Response(text="here")

    client = TestClient(TestServer(await web_app(Extra("true", host="127.0.0.1", port=0))))
    await client.start_server()
    try:
        assert await (await client.get("/extra")).text() == "here"
        assert "xterm" in await (await client.get("/")).text()  # its own page still served
    finally:
        await client.close()
