"""rtplay's terminal UI: ``run_tui(config)`` runs the playground (see :mod:`rtplay.tui.app`)."""

from __future__ import annotations

from rtplay.tui.app import RtplayApp, run_tui

__all__ = ["RtplayApp", "run_tui"]
