"""The server's core, shared by every listener: hub, fan-out, fault state and shaping, throttle,
connections, load, events, certificate, control guard."""
