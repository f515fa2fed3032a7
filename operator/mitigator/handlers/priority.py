"""The handler threads, as a pool that runs urgent work first.

kopf runs every sync handler in one executor (`settings.execution.executor`), first come first
served. At 1,000 open Incidents that queue is mostly follow-up ticks (verification of what was
done), and an Incident's first tick, the one that acts, waits behind all of them. This pool
replaces kopf's executor with as many threads (`max_workers`) and a priority queue: work
submitted by kopf itself gets priority 0, and the tick handler submits its own work with the
priority it computes from the Incident (handlers/incidents.py).

No starvation: priority `p` only counts for `p * age_step` seconds. Work is ordered by the
time it was submitted plus that handicap (then by submission order), so an item of priority
`p` runs before anything submitted more than `p * age_step` seconds after it, whatever that
is; within one priority, first in first out.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

URGENT = 0
# How long a follow-up tick may be held back while first ticks wait: 1,000 Incidents created
# at once take about a minute to act on here (two cores shared with the API server), and a
# bound shorter than that lets follow-ups back in mid-burst. Holding a verification tick back
# delays a resolution, never a first action nor a notice (escalation runs at priority 0).
DEFAULT_AGE_STEP = 60.0


@dataclass(order=True)
class _Item:
    key: float
    sequence: int
    run: Callable[[], None] = field(compare=False)
    future: Future[Any] = field(compare=False)


class PriorityExecutor(Executor):
    """A thread pool (threads started on demand, up to `max_workers`) that takes the most
    urgent work first; see the module's docstring for the order."""

    def __init__(
        self,
        max_workers: int,
        *,
        age_step: float = DEFAULT_AGE_STEP,
        name: str = "handler",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        # kopf's settings.execution.max_workers setter writes this attribute.
        self._max_workers = max_workers
        self._age_step = age_step
        self._name = name
        self._clock = clock
        self._queue: list[_Item] = []
        self._sequence = itertools.count()
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._threads: list[threading.Thread] = []
        # Threads waiting for work and not woken yet: whoever wakes one counts it off, so
        # that a burst of submissions starts new threads rather than count on one thread.
        self._waiting = 0
        self._closed = False

    def submit_at(
        self, priority: int, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T]:
        """Run `fn(*args, **kwargs)` at `priority` (0 first, 1 after, ...)."""
        if priority < 0:
            raise ValueError("priority must be 0 or more")
        future: Future[T] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new work after shutdown")
            key = self._clock() + priority * self._age_step
            heapq.heappush(self._queue, _Item(key, next(self._sequence), run, future))
            if self._waiting:
                self._waiting -= 1
                self._work.notify()
            elif len(self._threads) < self._max_workers:
                self._start_thread()
        return future

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """What kopf (loop.run_in_executor) calls: urgent."""
        return self.submit_at(URGENT, fn, *args, **kwargs)

    def _start_thread(self) -> None:
        thread = threading.Thread(
            target=self._worker, name=f"{self._name}-{len(self._threads)}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _worker(self) -> None:
        while True:
            with self._lock:
                while not self._queue:
                    if self._closed:
                        return  # closed and drained
                    self._waiting += 1
                    self._work.wait()
                item = heapq.heappop(self._queue)
            item.run()
            del item  # drop the work's references before waiting for the next

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No new work; what is queued still runs (unless `cancel_futures`). With `wait`, return
        once the threads are done (a worker shutting its own pool down does not wait for
        itself)."""
        with self._lock:
            self._closed = True
            if cancel_futures:
                cancelled, self._queue = self._queue, []
            else:
                cancelled = []
            self._waiting = 0
            self._work.notify_all()
            threads = list(self._threads)
        for item in cancelled:
            item.future.cancel()
        if wait:
            current = threading.current_thread()
            for thread in threads:
                if thread is not current:
                    thread.join()


__all__ = ["URGENT", "PriorityExecutor"]
