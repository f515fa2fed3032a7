"""MITIGATOR_DEBUG_SNAPSHOTS=<directory>[:frames] (diagnosis only): on each SIGUSR1, the heap
at that moment after a full collection and a malloc trim, so that what is left is what is
held. In `<directory>`: a line of `index.jsonl` (the resident size by kind of mapping, what
the C allocator has handed out, allocated blocks, threads, live objects by type),
`<n>.mallocstats` (CPython's arenas and pools: live blocks against free space kept) and,
with tracemalloc `frames` deep (10 unless told; 0: no tracing), `<n>.snap` for
`tracemalloc.Snapshot.load(...).compare_to(..., "traceback")`. Tracing slows the operator
several times over (at 300 Incidents its status writes fell behind): use `:0` at scale."""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path

from mitigator.observability import heap

ENVIRONMENT = "MITIGATOR_DEBUG_SNAPSHOTS"


def _resident_by_kind() -> dict[str, float]:
    """Resident MiB by kind of mapping: the brk heap, anonymous maps (pymalloc's arenas,
    malloc's other arenas and large blocks, thread stacks), files (code)."""
    kinds: dict[str, float] = {"heap": 0.0, "anonymous": 0.0, "file": 0.0, "other": 0.0}
    kind = "other"
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            first = line.split(maxsplit=6)
            if "-" in first[0] and len(first) >= 5 and ":" in first[3]:
                name = first[5].strip() if len(first) > 5 else ""
                kind = (
                    "heap"
                    if name == "[heap]"
                    else "anonymous"
                    if not name
                    else "file"
                    if name.startswith("/")
                    else "other"
                )
            elif first[0] == "Rss:":
                kinds[kind] += int(first[1]) / 1024
    return {k: round(v, 1) for k, v in kinds.items()}


def _types(limit: int = 60) -> dict[str, int]:
    counts = Counter(type(o).__qualname__ for o in gc.get_objects())
    return dict(counts.most_common(limit))


def write_allocator_statistics(path: Path, *, mode: str = "w") -> None:
    """CPython's own allocator's statistics (arenas, pools, blocks), written by C to file
    descriptor 2: pointed at `path` (opened with `mode`) for the moment."""
    saved = os.dup(2)
    with open(path, mode) as out:
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def take(directory: Path, number: int) -> dict[str, object]:
    """One snapshot now (collected and trimmed first); its summary."""
    gc.collect()
    rss_before_trim = heap.rss_mib()
    heap.malloc_trim()
    if tracemalloc.is_tracing():
        tracemalloc.take_snapshot().dump(str(directory / f"{number}.snap"))
    write_allocator_statistics(directory / f"{number}.mallocstats")
    current, peak = tracemalloc.get_traced_memory()
    summary: dict[str, object] = {
        "n": number,
        "at": time.time(),
        "rss_mib_before_trim": rss_before_trim,
        "rss_mib": heap.rss_mib(),
        "traced_mib": round(current / 2**20, 1),
        "traced_peak_mib": round(peak / 2**20, 1),
        "malloc_in_use_mib": round((heap.malloc_in_use_bytes() or 0) / 2**20, 1),
        "resident": _resident_by_kind(),
        "blocks": sys.getallocatedblocks(),
        "threads": threading.active_count(),
        "types": _types(),
    }
    with open(directory / "index.jsonl", "a") as out:
        out.write(json.dumps(summary) + "\n")
    return summary


def install() -> bool:
    """Start tracing and listen for SIGUSR1, when the environment asks. Whether it did."""
    setting = os.environ.get(ENVIRONMENT)
    if not setting:
        return False
    where, _, frames = setting.partition(":")
    directory = Path(where)
    directory.mkdir(parents=True, exist_ok=True)
    if int(frames or 10) > 0:  # 0: no tracing, only the sizes and the object counts
        tracemalloc.start(int(frames or 10))
    wanted = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        wanted.set()  # the work is done in the thread, not in the signal handler

    def run() -> None:
        number = 0
        while True:
            wanted.wait()
            wanted.clear()
            take(directory, number)
            number += 1

    signal.signal(signal.SIGUSR1, on_signal)
    threading.Thread(target=run, name="memory-snapshots", daemon=True).start()
    return True
