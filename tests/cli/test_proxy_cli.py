"""``rtplay proxy … --headless``: a report of what passed, with the faults of the timeline."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path

import aiohttp

from rtplay.cli.main import main
from tests.proxy.upstreams import sse_upstream

ROOT = Path(__file__).resolve().parents[2]


async def test_headless_proxy_reports_routes_clients_and_faults(tmp_path: Path) -> None:
    report = tmp_path / "proxy.json"
    async with sse_upstream() as (url, app):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rtplay.cli.main", "proxy", url, "--api-port", "0", "--headless",
            "--duration", "1.5", "--fault", "error=503@0s-0.2s:http", "--fault", "delay=50ms:http", "--json", str(report),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert process.stderr is not None
        banner = (await process.stderr.readline()).decode()
        proxy_url = banner.split(": ", 1)[1].split(" ")[0]
        async with aiohttp.ClientSession() as http:
            async with http.get(proxy_url + "/hello") as response:
                assert response.status == 503 and response.headers["Retry-After"] == "1"
            await asyncio.sleep(0.3)  # past the error's end (0.2 s)
            async with http.get(proxy_url + "/hello?since=4") as response:
                assert (response.status, await response.text()) == (200, "hello 4")
        stdout, _ = await process.communicate()
    assert process.returncode == 0
    data = json.loads(report.read_text())
    route = data["wire"]["routes"][0]
    assert (route["path"], route["kind"], route["connections"], route["refused"]) == ("/hello", "http", 2, 1)
    assert route["added_latency_p50_ms"] is not None and route["added_latency_p50_ms"] >= 50
    decisions = data["wire"]["clients"][0]["decisions"]
    assert [d["refused"] for d in decisions] == [503, None] and decisions[1]["resume_from"] == "4"
    assert decisions[1]["after_close_s"] >= 0.3
    assert "/hello" in stdout.decode() and data["proxy"]["toxics"] == [json_of_delay(data)]


def json_of_delay(data: dict[str, object]) -> dict[str, object]:
    """The delay fault is still on at the end; the error ended at 0.2 s."""
    return {
        "name": "delay=50ms:http", "type": "delay", "stream": "downstream", "toxicity": 1.0,
        "attributes": {"delay": 50, "jitter": 0, "kind": "http"},
    }


def test_a_bad_fault_spec_is_a_usage_error(capsys: object) -> None:
    try:
        main(["proxy", "http://127.0.0.1:1", "--headless", "--fault", "loss=20%:udp"])
    except SystemExit as exc:
        assert exc.code == 2
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert "a kind of traffic: all, http, sse, ws" in err


def test_a_port_in_use_is_said_plainly(capsys: object) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["proxy", "http://127.0.0.1:1", "--headless", "--duration", "0.1", "--api-port", str(port)])
    assert code == 2
    assert "cannot listen" in capsys.readouterr().err  # type: ignore[attr-defined]
