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
import logging
import os
import threading
import weakref
from collections.abc import Callable

from mitigator.observability import heap

M_ARENA_MAX = -8  # glibc's mallopt parameter number
ARENAS = 2
TRIM_EVERY_SECONDS = 30.0
# Logged (INFO) at the first trim, since a process's size before it is not what it idles at,
# and at any trim that hands back at least NOTABLE_MIB (after a burst); the others at DEBUG.
# The benchmarks wait for these lines before they take the RSS idle and after a burst.
TRIM = "malloc trim"
FIRST_TRIM = f"first {TRIM}"
NOTABLE_MIB = 8.0

log = logging.getLogger("mitigator.allocator")

# Caches that drop what expired before each trim, so that the trim can hand its pages back.
# Held weakly: a cache goes with its owner (tests build many).
_before_trim: list[weakref.WeakMethod[Callable[[], object]]] = []


def before_each_trim(method: Callable[[], object]) -> None:
    """Call the bound `method` (e.g. a cache's expiry) before each periodic trim."""
    _before_trim.append(weakref.WeakMethod(method))


def expire_caches() -> int:
    """Call every cache's expiry now; how many caches there were."""
    called = 0
    for reference in list(_before_trim):
        method = reference()
        if method is None:
            _before_trim.remove(reference)
            continue
        called += 1
        try:
            method()
        except Exception:  # a cache's failure must not stop the trims
            log.exception("expiring a cache before the trim failed")
    return called


def _libc() -> ctypes.CDLL | None:
    """glibc, when the C library is glibc (it has mallopt and malloc_trim)."""
    c = heap.libc()
    return c if hasattr(c, "mallopt") and hasattr(c, "malloc_trim") else None


def limit_arenas(arenas: int = ARENAS) -> bool:
    """At most `arenas` malloc arenas, unless MALLOC_ARENA_MAX says otherwise (glibc reads it
    itself). Must run before the handler threads start. Whether the limit is in force."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return True
    libc = _libc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, arenas))


def trim() -> bool:
    """Hand free heap pages back to the system now. Whether any were."""
    return _libc() is not None and heap.malloc_trim()


rss_mib = heap.rss_mib


def trim_periodically(
    stop: threading.Event, *, every: float = TRIM_EVERY_SECONDS
) -> threading.Thread | None:
    """A daemon thread trimming every `every` seconds until `stop` is set (None: no glibc)."""
    if _libc() is None:
        return None

    def run() -> None:
        first = True
        while not stop.wait(every):
            expire_caches()
            before = rss_mib()
            released = trim()
            after = rss_mib()
            notable = before is not None and after is not None and before - after >= NOTABLE_MIB
            log.log(
                logging.INFO if first or notable else logging.DEBUG,
                "%s: RSS %s -> %s MiB (free pages handed back: %s); every %.0fs",
                FIRST_TRIM if first else TRIM,
                before,
                after,
                released,
                every,
            )
            first = False

    thread = threading.Thread(target=run, name="malloc-trim", daemon=True)
    thread.start()
    return thread
