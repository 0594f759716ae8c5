"""WebRTC: signaling over HTTP and the publishing aiortc peers."""
