"""This process's resident memory, as the server and crowd workers report it."""

from __future__ import annotations

import resource
import sys

import pytest

from rtplay.runtime.process import resident_kb


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/statm is Linux's")
def test_resident_memory_is_what_proc_says_and_grows_with_what_the_process_holds() -> None:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    before = resident_kb()
    assert before == pytest.approx(pages * resource.getpagesize() / 1024, rel=0.2)
    held = bytearray(b"\x01" * (64 * 1024 * 1024))  # touched, so resident
    try:
        assert resident_kb() - before > 48 * 1024
    finally:
        del held


def test_no_proc_means_zero_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_open = builtins.open

    def no_proc(path: object, *args: object, **kwargs: object) -> object:
        if str(path).startswith("/proc/"):
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(builtins, "open", no_proc)
    assert resident_kb() == 0.0
