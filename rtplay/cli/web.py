"""``rtplay --web``: the playground in a browser tab (textual-serve), with no outside request.

textual-serve's page links its font from a web font service, which fails offline and sends
every visitor's address there. :class:`LocalWebServer` drops that link from the page it
serves and, when this machine has a monospace font file (:data:`MONO_FONTS`), serves it
under the same family name at :data:`FONT_PATH`; otherwise the browser's own monospace font
is used. Nothing else of textual-serve changes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp import web

from rtplay.compat.textual_serve import RoutedServer

#: Where the page gets its font from this server.
FONT_PATH = "/rtplay-font/mono.ttf"

#: Monospace fonts looked for, in order (Debian's fonts-dejavu-core ships the first).
MONO_FONTS = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"),
    Path("/usr/share/fonts/truetype/noto/NotoSansMono-Regular.ttf"),
    Path("/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf"),
)

#: A ``<link>`` to an absolute URL (``http://`` or ``https://``): the page's own are too.
_ABSOLUTE_LINK = re.compile(r"<link\b[^>]*\bhref=\"(https?://[^\"]*)\"[^>]*/?>", re.IGNORECASE | re.DOTALL)


def local_font() -> Path | None:
    """The first of :data:`MONO_FONTS` this machine has."""
    return next((p for p in MONO_FONTS if p.is_file()), None)


def localize(html: str, own_url: str, font_url: str | None) -> str:
    """``html`` without links to any host but ``own_url``'s; the page's font family from ``font_url``."""
    html = _ABSOLUTE_LINK.sub(lambda m: m.group(0) if m.group(1).startswith(own_url) else "", html)
    if font_url is not None:  # the family name the page's own CSS asks for
        face = f'<style>@font-face {{ font-family: "Roboto Mono"; src: url("{font_url}"); }}</style>'
        html = html.replace("</head>", face + "</head>", 1)
    return html


class LocalWebServer(RoutedServer):
    """textual-serve's server, its page served with no outside request."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.font = local_font()

    def extra_routes(self) -> list[web.RouteDef]:
        """The local font's route, when this machine has one."""
        return [web.get(FONT_PATH, self.handle_font)] if self.font is not None else []

    async def handle_index(self, request: web.Request) -> web.Response:
        response = await super().handle_index(request)  # rendered by its template
        assert isinstance(response, web.Response)
        font_url = self.public_url + FONT_PATH if self.font is not None else None
        response.text = localize(response.text or "", self.public_url, font_url)
        return response

    async def handle_font(self, request: web.Request) -> web.FileResponse:
        assert self.font is not None
        return web.FileResponse(self.font, headers={"Cache-Control": "max-age=86400"})
