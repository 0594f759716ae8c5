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

    # 64 KiB buffers come from glibc's heap (under its mmap threshold). Freeing every other
    # one leaves holes between live buffers, as connections that go between ones that stay
    # do: the heap keeps them resident (nothing to give back at its top) until it is trimmed.
    size, count = 64 * 1024, 300
    buffers = [bytearray(size) for _ in range(count)]
    for buffer in buffers:
        buffer[::4096] = b"\x01" * len(range(0, size, 4096))  # touch every page: resident
    keepers = buffers[1::2]
    del buffers, buffer
    freed = resident_kb()
    assert release_free_memory()
    assert freed - resident_kb() > count // 2 * size / 1024 / 2  # at least half of what was freed
    assert len(keepers) == count // 2
