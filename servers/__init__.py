"""The built-in multi-transport server: its own process (``rtplay serve`` / ``python -m servers``)."""
