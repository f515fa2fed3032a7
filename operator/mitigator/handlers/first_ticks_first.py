"""kopf's handler threads take a new Incident's first ticks before the others' re-checks.

kopf runs every sync handler in one thread pool, first come, first served. In an alert storm
that queue holds, every tick interval, one tick of every Incident already acted on (waiting
for its rollout, in its verification window, waiting for a slot) beside the first tick of
each new one, so a new Incident's first action waits behind hundreds of re-checks whose
answer can wait two seconds more. Here a tick of an Incident not yet triaged goes before the
rest, which keep their order; one in every `FAIR_SHARE` picks still goes to the rest while
new Incidents keep coming, so a storm cannot stall the verification of those already acted
on (kopf queues an Incident's next tick only once its last one has run: the urgent queue
holds at most one tick per new Incident).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from mitigator import INCIDENT_PLURAL
from mitigator.models import Phase

# Of every FAIR_SHARE picks while both queues wait, one goes to the rest.
FAIR_SHARE = 4

Urgency = Callable[[Any], bool]
# Told, as each queued work starts, whether it was urgent and how long it waited.
Waited = Callable[..., None]


def _not_told(*, first_tick: bool, seconds: float) -> None:
    pass


class _TwoQueues:
    """What ThreadPoolExecutor's workers read their work from (put, get, get_nowait), in two
    queues; None (a worker's cue to exit) only once both are empty."""

    def __init__(self, urgent: Urgency, *, fair_share: int, waited: Waited) -> None:
        self._is_urgent = urgent
        self._fair_share = fair_share
        self._waited = waited
        # (work, when queued)
        self._urgent: deque[tuple[Any, float]] = deque()
        self._rest: deque[tuple[Any, float]] = deque()
        self._exits = 0
        self._urgent_in_a_row = 0
        self._ready = threading.Condition(threading.Lock())

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        with self._ready:
            if item is None:
                self._exits += 1
            elif self._urgent_work(item):
                self._urgent.append((item, time.monotonic()))
            else:
                self._rest.append((item, time.monotonic()))
            self._ready.notify()

    def put_nowait(self, item: Any) -> None:
        self.put(item, block=False)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        with self._ready:
            while not (self._urgent or self._rest or self._exits):
                if not block or not self._ready.wait(timeout):
                    raise queue.Empty
            urgent, taken = self._next()
        if taken is None:
            return None
        item, queued_at = taken
        self._waited(first_tick=urgent, seconds=time.monotonic() - queued_at)
        return item

    def get_nowait(self) -> Any:
        return self.get(block=False)

    def qsize(self) -> int:
        with self._ready:
            return len(self._urgent) + len(self._rest)

    def empty(self) -> bool:
        return self.qsize() == 0

    def _next(self) -> tuple[bool, tuple[Any, float] | None]:
        fair_turn = self._urgent_in_a_row >= self._fair_share - 1
        if self._urgent and not (fair_turn and self._rest):
            self._urgent_in_a_row += 1
            return True, self._urgent.popleft()
        self._urgent_in_a_row = 0
        if self._rest:
            return False, self._rest.popleft()
        self._exits -= 1
        return False, None

    def _urgent_work(self, item: Any) -> bool:
        try:
            return self._is_urgent(getattr(item, "fn", None))
        except Exception:  # deciding the order must never lose the work
            return False


class FirstTicksFirst(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose queued work `urgent` says yes to goes first (see above);
    `waited` is told how long each work waited for a thread."""

    def __init__(
        self,
        max_workers: int,
        *,
        urgent: Urgency,
        fair_share: int = FAIR_SHARE,
        waited: Waited = _not_told,
        thread_name_prefix: str = "",
    ) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        # Replaced before any worker starts: each worker is given the queue when it starts.
        self._work_queue = _TwoQueues(  # type: ignore[assignment]
            urgent, fair_share=fair_share, waited=waited
        )


def handler_kwargs(fn: Any) -> Mapping[str, Any]:
    """The keyword arguments kopf bound to a sync handler it queued: it queues
    `partial(context.run, partial(handler, **kwargs))` (kopf's invocation.py); {} otherwise."""
    while isinstance(fn, partial):
        if fn.keywords:
            return fn.keywords
        fn = fn.args[0] if fn.args else None
    return {}


def untriaged_incident_tick(fn: Any) -> bool:
    """Whether kopf queued a handler of an Incident that has not been triaged yet: its first
    tick (or one waiting for its target to appear)."""
    kwargs = handler_kwargs(fn)
    resource = kwargs.get("resource")
    if getattr(resource, "plural", None) != INCIDENT_PLURAL:
        return False
    status = kwargs.get("status") or {}
    return Phase.of(status.get("phase")) is Phase.TRIAGING  # no phase yet is Triaging too
