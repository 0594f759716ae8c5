"""`rtplay --web` serves its page with no request to any other host (it works offline)."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import replace

import pytest
from aiohttp.test_utils import TestClient, TestServer

from rtplay.cli.web import FONT_PATH, LocalWebServer, localize
from rtplay.compat.textual_serve import web_app
from rtplay.tui.app import RtplayApp
from rtplay.tui.backend import StaticBackend
from rtplay.tui.model import PAUSED
from tests.tui.demo import demo_dashboard, demo_report


async def test_the_page_asks_nothing_of_another_host_and_its_font_is_served_here() -> None:
    server = LocalWebServer("true", host="127.0.0.1", port=0, title="rtplay")
    client = TestClient(TestServer(await web_app(server)))
    await client.start_server()
    try:
        page = await (await client.get("/")).text()
        assert "xterm" in page  # the real page, rendered by textual-serve's template
        outside = re.findall(r"(?:href|src)=\"(https?://[^\"]+)\"", page)
        assert all(url.startswith(server.public_url) for url in outside), outside
        if server.font is not None:
            assert FONT_PATH in page
            font = await client.get(FONT_PATH)
            assert font.status == 200 and len(await font.read()) > 10_000
    finally:
        await client.close()


def test_the_ready_line_comes_once_the_page_can_be_reached() -> None:
    # It used to come before the listener was bound: a script that opened the URL on reading
    # it was refused for ~10 ms.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    web = subprocess.Popen(
        [sys.executable, "-m", "rtplay.cli.main", "--web", "--web-port", str(port)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert web.stdout is not None
        # Bounded: a process that fails ends, and its stdout with it (the suite's timeout else).
        line = next((text for text in web.stdout if text.startswith("rtplay playground in a browser")), "")
        assert f"http://127.0.0.1:{port}" in line
        socket.create_connection(("127.0.0.1", port), timeout=5).close()  # refused before
        web.send_signal(signal.SIGINT)
        assert web.wait(10) == 0
    finally:
        if web.poll() is None:
            web.kill()
            web.wait()


def test_localize_drops_only_links_to_other_hosts() -> None:
    html = ('<head><link rel="stylesheet" href="http://127.0.0.1:8000/static/x.css" />\n<link\n rel="stylesheet"\n'
            ' href="https://fonts.example/css"\n/></head>')
    out = localize(html, "http://127.0.0.1:8000", None)
    assert "http://127.0.0.1:8000/static/x.css" in out and "fonts.example" not in out
    assert '@font-face { font-family: "Roboto Mono"; src: url("/f.ttf"); }' in localize(html, "http://127.0.0.1:8000", "/f.ttf")


def has_a_font(char: str) -> bool:
    """Whether some font of this machine has a glyph for ``char`` (fontconfig, which Chromium
    falls back through on Linux: a glyph no font has is drawn as a missing-glyph box)."""
    found = subprocess.run(["fc-list", f":charset={ord(char):x}", "file"], capture_output=True, text=True, check=True)
    return bool(found.stdout.strip())


@pytest.mark.skipif(shutil.which("fc-list") is None, reason="needs fontconfig's fc-list")
async def test_every_glyph_the_playground_draws_has_a_font_to_draw_it() -> None:
    """The --web page drew the paused header's U+23F8 as a box: no font here has it."""
    app = RtplayApp(backend=StaticBackend(replace(demo_dashboard(), rate=0.0), demo_report()))
    drawn: set[str] = set()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        drawn |= {c for c in app.export_screenshot() if ord(c) > 127}
        await pilot.press("question_mark")
        await pilot.pause()
        drawn |= {c for c in app.export_screenshot() if ord(c) > 127}
    assert sorted(c for c in drawn if not has_a_font(c)) == []
    assert PAUSED in drawn  # the paused header is among them
