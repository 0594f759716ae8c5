"""``GET /``: a browser page that subscribes with the browser's own EventSource and WebSocket.

Open the server's URL in a browser and it shows, per transport, what arrived, the last seq,
gaps, duplicates and reconnects — the browser's built-in retry logic next to rtplay's
clients. The page also puts a one-line summary in ``document.title`` so a headless browser
test can read it. CORS is open on the read endpoints so a page of your own, served from
elsewhere, can connect too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

#: Paths a page from any origin may read (GET), and the control API (JSON POST/DELETE).
CORS_PREFIXES = ("/poll", "/longpoll", "/sse", "/control", "/rtc")

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>rtplay</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; background: #111; color: #ddd }
  table { border-collapse: collapse } td, th { padding: .2em 1em; text-align: right }
  th:first-child, td:first-child { text-align: left }
</style>
<h1>rtplay — this browser as a client</h1>
<p>Each row is your browser's own implementation: its EventSource reconnects by itself,
the WebSocket here reconnects after 1 s and resumes with <code>since</code>.</p>
<table id="t"><tr><th>transport<th>state<th>delivered<th>last seq<th>gaps<th>dup<th>reconnects</table>
<script>
"use strict";
const rows = {};
function row(name) {
  if (!rows[name]) {
    const tr = document.getElementById("t").insertRow();
    rows[name] = {tr, state: "connecting", delivered: 0, last: 0, gaps: 0, dup: 0, opens: 0};
    for (let i = 0; i < 7; i++) tr.insertCell();
  }
  return rows[name];
}
function show() {
  const parts = [];
  for (const [name, r] of Object.entries(rows)) {
    const cells = [name, r.state, r.delivered, r.last, r.gaps, r.dup, Math.max(0, r.opens - 1)];
    cells.forEach((v, i) => { r.tr.cells[i].textContent = v; });
    parts.push(`${name} ${r.state} delivered=${r.delivered} last=${r.last} gaps=${r.gaps} dup=${r.dup} reconnects=${Math.max(0, r.opens - 1)}`);
  }
  document.title = parts.join("; ");
}
function envelope(name, text) {
  const r = row(name), m = JSON.parse(text);
  if (m.seq === undefined) return;
  if (m.seq <= r.last) r.dup++;
  else { if (r.last && m.seq > r.last + 1) r.gaps += m.seq - r.last - 1; r.last = m.seq; r.delivered++; }
  show();
}

const es = new EventSource("/sse");
es.onopen = () => { const r = row("sse"); r.state = "open"; r.opens++; show(); };
es.onmessage = (e) => envelope("sse", e.data);
es.onerror = () => { row("sse").state = es.readyState === EventSource.CLOSED ? "failed" : "retrying"; show(); };

function websocket() {
  const r = row("ws");
  const ws = new WebSocket(`ws://${location.host}/ws?since=${r.last}`);
  ws.onopen = () => { r.state = "open"; r.opens++; show(); };
  ws.onmessage = (e) => envelope("ws", e.data);
  ws.onclose = () => { r.state = "retrying"; show(); setTimeout(websocket, 1000); };
}
websocket();
show();
</script>
"""


async def page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


@web.middleware
async def cors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """``Access-Control-Allow-Origin: *`` on the read and control endpoints, and preflights."""
    if not request.path.startswith(CORS_PREFIXES):
        return await handler(request)
    headers = {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type, Last-Event-ID",
    }
    if request.method == "OPTIONS":
        return web.Response(status=204, headers=headers)
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # a 400 raised by a parser: the page must read its reason
        exc.headers.update(headers)
        raise
    if not response.prepared:  # a stream (SSE) sets them itself before its first byte
        response.headers.update(headers)
    return response


def install(app: web.Application) -> None:
    """An app hook: the page at ``/`` and CORS on the endpoints a foreign page may use."""
    app.router.add_get("/", page)
    app.middlewares.insert(0, cors_middleware)  # outermost: error-fault answers get CORS too
