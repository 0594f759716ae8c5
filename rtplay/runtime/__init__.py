"""Process plumbing both processes use: event loop, token file, loop monitor, the loopback Host rule."""
