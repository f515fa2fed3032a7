"""What the process's heap holds now, as metrics: the measure of a leak.

The resident size (`process_resident_memory_bytes`) says what the process costs, but after a
burst it moves by tens of MiB with fragmentation and with when freed pages were handed back,
so a slow leak hides in it. These count what is still allocated:

- `mitigator_python_allocated_blocks`: memory blocks the interpreter has allocated and not
  freed (every live Python object is at least one), `sys.getallocatedblocks()`;
- `mitigator_malloc_in_use_bytes`: bytes the C allocator has handed out and not had back,
  in every arena and in its own mappings (glibc's `mallinfo2`: uordblks + hblkhd; absent
  where the C library has no `mallinfo2`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Iterator
from functools import cache

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _MallInfo2(ctypes.Structure):
    # glibc 2.33+: struct mallinfo2, every field a size_t, in this order.
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def rss_mib() -> float | None:
    """This process's resident size (None where /proc is not)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def malloc_trim() -> bool:
    """Hand free heap pages back to the system now (glibc's malloc_trim). Whether any were."""
    c = libc()
    return bool(c is not None and hasattr(c, "malloc_trim") and c.malloc_trim(0))


@cache
def libc() -> ctypes.CDLL | None:
    """The C library, loaded once (None where there is none to load): finding it runs
    `ldconfig -p` in a child process, not a thing to do on every trim or scrape."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


@cache
def _mallinfo2() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    function = getattr(libc(), "mallinfo2", None)
    if function is not None:
        function.restype = _MallInfo2
        function.argtypes = []
    return function


def malloc_in_use_bytes() -> int | None:
    """Bytes the C allocator has handed out and not had back (None: not glibc 2.33+)."""
    function = _mallinfo2()
    if function is None:
        return None
    info = function()
    return int(info.uordblks + info.hblkhd)


class HeapCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "mitigator_python_allocated_blocks",
            "Memory blocks the interpreter has allocated and not freed.",
            value=sys.getallocatedblocks(),
        )
        in_use = malloc_in_use_bytes()
        if in_use is not None:
            yield GaugeMetricFamily(
                "mitigator_malloc_in_use_bytes",
                "Bytes the C allocator has handed out and not had back (all arenas).",
                value=in_use,
            )
