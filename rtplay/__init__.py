"""rtplay: a terminal playground for real-time web transports (poll, long-poll, SSE, WebSocket, WebTransport, WebRTC)."""
