"""`rtplay --web` serves its page with no request to any other host (it works offline)."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient, TestServer

from rtplay.cli.web import FONT_PATH, LocalWebServer, localize
from rtplay.compat.textual_serve import web_app


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


def test_localize_drops_only_links_to_other_hosts() -> None:
    html = ('<head><link rel="stylesheet" href="http://127.0.0.1:8000/static/x.css" />\n<link\n rel="stylesheet"\n'
            ' href="https://fonts.example/css"\n/></head>')
    out = localize(html, "http://127.0.0.1:8000", None)
    assert "http://127.0.0.1:8000/static/x.css" in out and "fonts.example" not in out
    assert '@font-face { font-family: "Roboto Mono"; src: url("/f.ttf"); }' in localize(html, "http://127.0.0.1:8000", "/f.ttf")
