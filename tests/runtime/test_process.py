"""This process's figures and limits: resident memory (as the server and crowd workers report
it), the open-files limit, and freed heap handed back (rtplay.runtime.memory's trim)."""

from __future__ import annotations

import resource
import subprocess
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
    from rtplay.runtime.memory import malloc_trim

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
    assert malloc_trim()
    assert freed - resident_kb() > count // 2 * size / 1024 / 2  # at least half of what was freed
    assert len(keepers) == count // 2


RAISE_FROM_256 = """
import resource
from rtplay.runtime.process import raise_open_files_limit
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
print(raise_open_files_limit(300), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
print(raise_open_files_limit(100), raise_open_files_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard)
"""


def test_the_open_files_limit_is_raised_as_far_as_asked_and_by_default_to_the_hard_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard < 1024:
        pytest.skip(f"a hard open-files limit of {hard}: nothing to raise to")
    # In a child process: this one's limit is not the test's to change.
    answer = subprocess.run([sys.executable, "-c", RAISE_FROM_256], capture_output=True, text=True, check=True)
    first, second = (line.split() for line in answer.stdout.splitlines())
    assert first == ["300", "300"]  # only as far as asked
    never_lowered, to_hard, now, hard_seen = second
    assert never_lowered == "300" and to_hard == now == hard_seen  # never lowered; then all the way
