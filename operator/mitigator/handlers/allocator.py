"""The C allocator under the operator's threads (glibc only; elsewhere nothing is changed).

Sync handlers run in a pool of threads (`max_workers`, 32 by default). glibc gives threads
their own malloc arenas (up to 8 per core) and keeps what is freed in each for reuse, so a
burst of parallel ticks (each parsing API responses) leaves the process at its peak size long
after the burst: measured at 1,000 Incidents, see docs/BENCHMARKS.md. Two arenas keep the
contention low for threads that mostly wait on the network, and a periodic trim hands the
free pages back to the system.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading

M_ARENA_MAX = -8  # glibc's mallopt parameter number
ARENAS = 2
TRIM_EVERY_SECONDS = 30.0


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def limit_arenas(arenas: int = ARENAS) -> bool:
    """At most `arenas` malloc arenas, unless MALLOC_ARENA_MAX says otherwise (glibc reads it
    itself). Must run before the handler threads start. Whether the limit is in force."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return True
    libc = _libc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, arenas))


def trim() -> bool:
    """Hand free heap pages back to the system now. Whether any were."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))


def trim_periodically(
    stop: threading.Event, *, every: float = TRIM_EVERY_SECONDS
) -> threading.Thread | None:
    """A daemon thread trimming every `every` seconds until `stop` is set (None: no glibc)."""
    if _libc() is None:
        return None

    def run() -> None:
        while not stop.wait(every):
            trim()

    thread = threading.Thread(target=run, name="malloc-trim", daemon=True)
    thread.start()
    return thread
