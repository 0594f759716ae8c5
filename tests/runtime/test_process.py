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



@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_heap_in_the_middle_comes_back_when_released() -> None:
    from rtplay.runtime.process import release_free_memory

    # 100 KiB buffers come from glibc's heap (under its mmap threshold); a small one allocated
    # after each keeps the heap's top in use, as live connections do, so freeing the big
    # ones leaves holes the heap keeps (resident) until it is trimmed.
    start = resident_kb()
    pairs = [(bytearray(100 * 1024), bytearray(1000)) for _ in range(400)]
    for big, _ in pairs:
        big[::4096] = b"\x01" * len(range(0, len(big), 4096))  # touch every page: resident
    assert resident_kb() - start > 30 * 1024
    keepers = [small for _, small in pairs]
    del pairs, big
    freed = resident_kb()
    assert release_free_memory()
    assert freed - resident_kb() > 20 * 1024  # of the ~40 MiB freed
    assert len(keepers) == 400
