"""The C allocator settings the operator applies to itself (glibc; elsewhere a no-op)."""

from __future__ import annotations

import ctypes.util
import threading

import pytest

from mitigator.handlers import allocator

glibc = pytest.mark.skipif(ctypes.util.find_library("c") is None, reason="no C library found")


@glibc
def test_arenas_limited_and_free_pages_handed_back() -> None:
    assert allocator.limit_arenas()
    garbage = [bytearray(1 << 20) for _ in range(32)]
    del garbage
    assert isinstance(allocator.trim(), bool)


@glibc
def test_periodic_trim_stops_when_told() -> None:
    stop = threading.Event()
    thread = allocator.trim_periodically(stop, every=0.01)
    assert thread is not None and thread.daemon
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
