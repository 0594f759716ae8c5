"""WebRTC signaling: ``POST /rtc/offer?since=N`` answers an offer with a publishing peer.

Signaling is only for set-up: the answer comes from :meth:`servers.rtc.peer.RtcManager.accept`,
and from then on the peer lives apart from the HTTP listener. Errors are answered with the
reason (a 400 for an offer that cannot be answered, 503 with Retry-After when full, the
fault's status under an ``error`` fault), readable by a browser page (CORS is on ``/rtc``).
"""

from __future__ import annotations

import logging

from aiohttp import web

from servers.core.context import ServerContext
from servers.http.common import CTX, MAX_REQUEST_BYTES, bad_request, cursor_of
from servers.rtc.ice import OfferError, parse_offer
from servers.rtc.peer import TRANSPORT, RtcManager, TooManyPeers

log = logging.getLogger(__name__)


async def handle_offer(manager: RtcManager, request: web.Request) -> web.Response:
    """``POST /rtc/offer?since=N`` with ``{"sdp", "type": "offer"}`` → the SDP answer."""
    ctx = request.app[CTX]
    ctx.faults.expire(ctx.clock())
    code = ctx.faults.error_for(TRANSPORT)
    if code is not None:
        return fault_response(ctx, code)
    since = cursor_of(request.query.get("since"))
    body = await read_body(request)
    if body is None:
        return bad_request(f"offer larger than {MAX_REQUEST_BYTES} bytes")
    try:
        answer = await manager.accept(parse_offer(body, manager.host), since, request.remote or "")
    except OfferError as exc:
        return bad_request(str(exc))
    except TooManyPeers as exc:
        headers = {"Retry-After": str(ctx.config.error_retry_after_s)}
        return web.json_response({"error": str(exc)}, status=503, headers=headers)
    except Exception as exc:  # our side failed (e.g. no UDP socket): this request only
        log.exception("rtc: answering an offer failed")
        return web.json_response({"error": f"cannot create a peer: {type(exc).__name__}"}, status=500)
    return web.json_response({"sdp": answer, "type": "answer"})


def fault_response(ctx: ServerContext, code: int) -> web.Response:
    """What an ``error CODE`` fault answers a signaling request with."""
    if code == 204:
        return web.Response(status=204)
    headers = {"Retry-After": str(ctx.config.error_retry_after_s)} if code == 503 else None
    return web.json_response({"error": f"injected fault: error {code}"}, status=code, headers=headers)


async def read_body(request: web.Request) -> bytes | None:
    """The request body, or None when it exceeds :data:`MAX_REQUEST_BYTES`."""
    if request.content_length is not None and request.content_length > MAX_REQUEST_BYTES:
        return None
    try:
        # The app's client_max_size is MAX_REQUEST_BYTES: this also bounds chunked bodies.
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        return None
