"""How a target answered a reconnect, in words. Pure.

When a client reconnects it asks the target to continue after the last seq it received
(SSE's ``Last-Event-ID``, a resume template's ``?since=``), or asks nothing. The first
message of the new connection says what the target did: resumed right after it, replayed
from the start or from some earlier seq, or sent nothing of what was published meanwhile.
A reconnect answered with an HTTP status is a refusal. Without a seq nothing can be judged
(and the verdict says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Outcome(Enum):
    """What the target did with one reconnect."""

    RESUMED = "resumed"
    """Continued right after the last seq received: nothing missed, nothing repeated."""
    REPLAYED_FROM_START = "replayed_from_start"
    """Started again at the first seq the client ever received (or lower)."""
    REPLAYED = "replayed"
    """Started at a seq the client had already received (but not the first)."""
    SKIPPED = "skipped"
    """Sent nothing of what was published while the client was away."""
    REFUSED = "refused"
    """Answered the reconnect with an HTTP status."""
    UNKNOWN = "unknown"
    """No seq was stated (or none arrived on the new connection): nothing can be judged."""


@dataclass(frozen=True)
class Reconnect:
    """One reconnect, as the client saw it."""

    asked: str | None
    """What the client sent to resume (``Last-Event-ID: 41``, ``since=41``); None: nothing."""
    highest_before: int | None
    """The highest seq received before the reconnect."""
    lowest_ever: int | None
    """The lowest seq ever received."""
    first: int | None
    """The first seq of the new connection; None when none arrived (yet) or there is no seq."""


@dataclass(frozen=True)
class Verdict:
    """A reconnect judged: the outcome and the sentence a pane and a report show."""

    outcome: Outcome
    words: str
    missed: int = 0
    """Messages the target did not send again (SKIPPED)."""
    repeated: int = 0
    """Messages the target sent again (REPLAYED…)."""


def refused(status: str) -> Verdict:
    """The reconnect was answered with ``status`` (e.g. ``HTTP 503``)."""
    return Verdict(Outcome.REFUSED, f"refused the reconnect with {status}")


def judge(reconnect: Reconnect) -> Verdict:
    """What the target did, from the first seq after the reconnect."""
    r = reconnect
    if r.highest_before is None or r.first is None:
        why = "no seq (state --seq)" if r.highest_before is None else "no message since the reconnect"
        return Verdict(Outcome.UNKNOWN, f"unknown: {why}")
    ignored = f"ignored {r.asked}: " if r.asked else ""
    if r.first == r.highest_before + 1:
        if r.asked:
            return Verdict(Outcome.RESUMED, f"resumed from the asked id ({r.asked})")
        return Verdict(Outcome.RESUMED, "continued without a gap (no cursor asked; nothing was published meanwhile)")
    if r.first > r.highest_before + 1:
        missed = r.first - r.highest_before - 1
        cause = ignored or "no resume cursor: "
        return Verdict(Outcome.SKIPPED, f"{cause}sent nothing missed ({missed} lost, resumed live at {r.first})",
                       missed=missed)
    repeated = r.highest_before - r.first + 1
    if r.lowest_ever is not None and r.first <= r.lowest_ever:
        words = f"{ignored}replayed from the start (seq {r.first}; {repeated} received again)"
        return Verdict(Outcome.REPLAYED_FROM_START, words, repeated=repeated)
    return Verdict(Outcome.REPLAYED, f"{ignored}replayed from seq {r.first} ({repeated} received again)",
                   repeated=repeated)
