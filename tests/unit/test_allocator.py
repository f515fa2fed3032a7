"""The C allocator settings the operator applies to itself (glibc; elsewhere a no-op)."""

from __future__ import annotations

import ctypes.util
import gc
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


class _Cache:
    def __init__(self) -> None:
        self.expired = threading.Event()

    def expire(self) -> None:
        self.expired.set()


@glibc
def test_caches_expire_before_each_trim_and_are_not_kept_alive() -> None:
    cache = _Cache()
    allocator.before_each_trim(cache.expire)
    stop = threading.Event()
    thread = allocator.trim_periodically(stop, every=0.01)
    try:
        assert cache.expired.wait(timeout=30)
    finally:
        stop.set()
    expired = cache.expired
    registered = allocator.expire_caches()  # other tests' caches may be alive too
    del cache
    gc.collect()
    expired.clear()
    assert allocator.expire_caches() < registered  # the cache went with its owner
    assert not expired.is_set()
    assert thread is not None
