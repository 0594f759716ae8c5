"""When the WebTransport client acknowledges what the server sends: ACK decimation.

aioquic acknowledges 1 ms after any ack-eliciting packet, so at 1000 messages/s (a packet
each) the client sends an ACK for every one to three packets, and both ends spend more on
ACKs than on the messages. RFC 9000 §13.2.1 lets a receiver delay an ACK up to the
``max_ack_delay`` it advertised; Chromium's QUIC, like most stacks, decimates ACKs on a busy
connection: one per :data:`ACK_EVERY_PACKETS` packets, or once the delay runs out.
:class:`AckDecimation` decides this per received datagram (pure: the connection passes in
what it saw); loss recovery keeps its speed because a new gap is acknowledged at once.
"""

from __future__ import annotations

#: How long an ACK may wait for more packets. Under the 25 ms ``max_ack_delay`` aioquic
#: advertises (the server's probe timeout allows for it), with margin for a busy loop.
ACK_DELAY_S = 0.020

#: Received datagrams acknowledged by one ACK at most: Chromium's ack decimation also sends
#: one every 10 retransmittable packets (RFC 9000 §13.2.2 asks for every second one; the
#: server's congestion window then still opens at one ACK per 10 packets' worth of bytes).
ACK_EVERY_PACKETS = 10


class AckDecimation:
    """Per received datagram: acknowledge (and send) now, or let the ACK timer do it."""

    def __init__(self, every: int = ACK_EVERY_PACKETS) -> None:
        if every < 1:
            raise ValueError("an ACK covers at least one datagram")
        self.every = every
        self.unacked = 0
        """Datagrams received since the last ACK left."""

    def on_datagram(self, owed_before: bool, new_gap: bool, handshake_done: bool) -> bool:
        """True to send now. ``owed_before``: an ACK was already owed before this datagram
        (else the last one left since, and the count starts again); ``new_gap``: it made a
        new range of received packet numbers (reordering or loss, RFC 9000 §13.2.1 says
        acknowledge without delay); ``handshake_done``: until then every packet is answered."""
        self.unacked = self.unacked + 1 if owed_before else 1
        if not handshake_done or new_gap or self.unacked >= self.every:
            self.unacked = 0
            return True
        return False
