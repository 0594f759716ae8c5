"""One module per library whose private internals rtplay reads, checked at start-up.

Each module wraps the internals it relies on and has a ``check()`` that fails with a clear
message naming the installed version when they are missing; :func:`check_all` runs them
all. ``pyproject.toml`` bounds these dependencies to the minor lines the modules were
written against.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any


class IncompatibleLibrary(RuntimeError):
    """An installed library lacks an internal rtplay relies on."""


def require(library: str, version: str, tested: str, ok: bool, what: str) -> None:
    """Raise :class:`IncompatibleLibrary` naming ``library`` and its version unless ``ok``."""
    if not ok:
        raise IncompatibleLibrary(
            f"{library} {version} lacks {what}, which rtplay relies on (written against "
            f"{library} {tested}); install a version in the range pyproject.toml allows"
        )


def require_line(library: str, version: str, tested: str, what: str) -> None:
    """Raise :class:`IncompatibleLibrary` unless ``version`` is on the ``tested`` minor line
    (``"1.16"``): for a fork of a library's private code, whose attribute names can stay the same
    while what the methods do changes, a name check is not enough."""
    if version.split(".")[:2] != tested.split(".")[:2]:
        raise IncompatibleLibrary(
            f"{library} {version} is not a version {what} was tested against ({library} {tested}.x): "
            f"install {library} {tested}.x (pyproject.toml pins it)"
        )


def replace_methods(cls: type, originals: dict[str, Any], replacements: dict[str, Any]) -> None:
    """A fork's one way in: keep each of ``cls``'s methods named in ``replacements`` in
    ``originals`` (the fork calls them where it is off), then put the replacement in its place."""
    for name, method in replacements.items():
        originals[name] = getattr(cls, name)
        setattr(cls, name, method)


LIBRARIES = ("aioquic", "aiortc", "aioice", "websockets", "aiohttp")
"""The libraries every rtplay process relies on, each with a compatibility module here."""

ON_DEMAND = ("textual_serve",)
"""Libraries with a compatibility module here that one command alone uses (``rtplay --web``):
checked by that command before it starts, so no other process imports them."""


def check_all(names: Iterable[str] = LIBRARIES) -> None:
    """Run the ``check()`` of each named compatibility module (all by default); raise on
    the first that fails."""
    for name in names:
        importlib.import_module(f"rtplay.compat.{name}").check()
