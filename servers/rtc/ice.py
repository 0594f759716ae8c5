"""What a WebRTC offer must hold to be answered.

:func:`parse_offer` turns a signaling body into an offer aiortc can answer, or one
:class:`OfferError` saying why not (never anything else). Browsers offer no candidate at
all, an mDNS ``*.local`` name (every desktop browser's default) or a LAN address: those are
dropped, and the server answers with its own loopback candidate and learns the browser's
address from the browser's checks (see :mod:`rtplay.protocol.ice`). Where ICE may gather and which
candidates it may use are :mod:`rtplay.protocol.ice` (the rules) and
:mod:`rtplay.compat.aioice` (the hook); datagram faults on the path are
:class:`rtplay.compat.aiortc.FaultyPath`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aiortc.sdp import SessionDescription

from rtplay.protocol.ice import restrict_candidates

#: Remote ICE candidates accepted in one offer. A loopback peer needs one; browsers offer a
#: handful. Each becomes a pair of connectivity checks, so the count is bounded.
MAX_REMOTE_CANDIDATES = 16


class OfferError(ValueError):
    """The offer cannot be answered; the message says why (sent back with a 400)."""


@dataclass(frozen=True, slots=True)
class Offer:
    sdp: str
    """The offer with only the candidates ICE may use (see :func:`restrict_candidates`)."""
    removed: tuple[str, ...]
    """Addresses of the candidates that were dropped."""


def parse_offer(body: bytes, host: str) -> Offer:
    """Validate a ``{"sdp", "type": "offer"}`` body; raise :class:`OfferError` saying why not."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise OfferError(f"body is not JSON: {str(exc)[:80]}") from None
    if not isinstance(payload, dict):
        raise OfferError('expected a JSON object {"sdp": ..., "type": "offer"}')
    kind, sdp = payload.get("type"), payload.get("sdp")
    if kind != "offer":
        raise OfferError(f'type must be "offer", got {str(kind)[:40]!r}')
    # RFC 8866 §5: a session description starts with the version line "v=0".
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise OfferError('sdp must be a session description starting with "v=0"')
    try:
        description = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser raises assorted types (assert, Index, Value…)
        raise OfferError(f"malformed SDP: {type(exc).__name__}: {str(exc)[:80]}") from None
    kinds = [m.kind for m in description.media]
    if kinds != ["application"]:
        raise OfferError(f"expected exactly one data-channel (m=application) section, got {kinds}")
    media = description.media[0]
    if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
        raise OfferError("SDP lacks ICE credentials (a=ice-ufrag / a=ice-pwd)")
    if media.dtls is None or not media.dtls.fingerprints:
        raise OfferError("SDP lacks a DTLS fingerprint (a=fingerprint)")
    if len(media.ice_candidates) > MAX_REMOTE_CANDIDATES:
        raise OfferError(f"more than {MAX_REMOTE_CANDIDATES} ICE candidates")
    restricted, removed = restrict_candidates(sdp, host)
    return Offer(restricted, tuple(removed))
