"""Process plumbing both processes use: the event loop, the control token file, the loop monitor,
the loopback ``Host`` rule."""
