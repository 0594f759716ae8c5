"""The HTTP/3 listener: WebTransport sessions over aioquic, with datagram faults on its UDP socket."""
