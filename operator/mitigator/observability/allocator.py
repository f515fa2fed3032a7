"""Free memory given back to the system after a burst of work (a storm of Incidents).

CPython frees its objects, but glibc's malloc keeps the pages it freed in its heaps, one heap
per thread that allocated (up to 8 per core: the handler pool's threads make many), until
`malloc_trim` returns them. Without it the operator's resident size stays near its peak
after a storm although what the Incidents held is gone (tests/faults/test_storms.py). A
trim costs milliseconds and changes nothing else; where there is no glibc it is skipped."""

from __future__ import annotations

import asyncio
import ctypes
from collections.abc import Callable

# Often enough that memory is back within a minute of a storm; seldom enough to cost nothing.
TRIM_SECONDS = 30.0


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


async def trim_periodically(interval: float = TRIM_SECONDS) -> None:
    """Until cancelled: every `interval`, give the free heap pages back (in a thread: ctypes
    releases the GIL and the event loop keeps running)."""
    trim = _malloc_trim()
    if trim is None:
        return
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(trim, 0)
