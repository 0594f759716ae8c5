"""The proxy playground: panes appear per route and kind, and the fault keys drive the proxy."""

from __future__ import annotations

import aiohttp

from rtplay.proxy.run import ProxyRun
from rtplay.tui.proxy_app import ProxyApp, ProxyScreen
from tests.proxy.upstreams import sse_upstream


async def test_keys_add_and_remove_faults_for_the_selected_kind_and_panes_show_routes() -> None:
    async with sse_upstream() as (url, _):
        app = ProxyApp(ProxyRun(url, api_port=0, seed=0))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ProxyScreen)
            proxy = screen.proxy_run.proxy
            async with aiohttp.ClientSession() as http:
                async with http.get(proxy.url + "/hello") as response:
                    assert response.status == 200
            await pilot.press("k")  # all -> sse
            await pilot.press("e")
            assert [(t.type, t.kind) for t in proxy.toxics] == [("error", "sse")]
            async with aiohttp.ClientSession() as http:
                async with http.get(proxy.url + "/events", headers={"Accept": "text/event-stream"}) as response:
                    assert response.status == 503
            screen.refresh_view()
            await pilot.pause()
            titles = {str(p.border_title) for p in screen.query(".route")}
            assert titles == {"/hello · http", "/events · sse"}
            clients = str(screen.query_one("#clients-body").render())
            assert "refused 503" in clients
            await pilot.press("e")
            assert list(proxy.toxics) == []
            await pilot.press("l", "c")
            assert list(proxy.toxics) == []
            await pilot.press("q")
