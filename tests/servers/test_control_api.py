"""The control API's own description: served at GET /control, matching the routes and README."""

from __future__ import annotations

from pathlib import Path

import httpx

from rtplay.protocol.control_api import ENDPOINTS, describe, value_ranges
from rtplay.protocol.faults import Kind
from servers.runner import Server

README = Path(__file__).resolve().parents[2] / "README.md"


async def test_get_control_describes_exactly_the_routes_the_server_has(server: Server) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        answer = await http.get(server.control_url)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    described = {(e["method"], e["path"]) for e in answer.json()["endpoints"]}
    runner = server.control._runner  # our own listener's app: every route it serves
    assert runner is not None
    app = runner.app
    routes = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/control") and route.method != "HEAD"
    }
    assert described == routes


def test_every_fault_kind_has_its_value_range_and_the_post_body_lists_them() -> None:
    ranges = value_ranges()
    assert set(ranges) == {k.value for k in Kind}
    assert ranges["error"].endswith("503 504") and ranges["loss"] == "% from 0 to 100"
    post = next(e for e in ENDPOINTS if (e.method, e.path) == ("POST", "/control/faults"))
    assert [f.name for f in post.body] == ["kind", "scope", "value", "jitter", "duration"]
    assert "delay: ms >= 0" in post.body[2].meaning


def test_the_readme_table_names_every_endpoint() -> None:
    text = README.read_text(encoding="utf-8")
    for endpoint in describe()["endpoints"]:  # type: ignore[union-attr]
        assert f"| `{endpoint['method']} {endpoint['path']}` |" in text  # type: ignore[index]
