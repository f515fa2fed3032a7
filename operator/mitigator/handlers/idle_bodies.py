"""kopf keeps the last body of every object of a kind that has a timer, for good: only while
a timer runs is it needed.

kopf hands a timer the object's latest body (`DaemonsMemory.live_fresh_body`, refreshed by
each watch event). It stores that body on the first event of every object of a kind with a
timer handler, whether or not a timer ever starts for it (its filter may refuse it), and lets
it go only when a timer exits for good. Ours never exit for good: they stop when their filter
stops admitting the object, so that they can start again (kopf 1.45.2,
`processing.process_spawning_cause`, `daemons._runner`). So every Incident ever seen, each
resolved one too, stayed in the process as its whole parsed body (status, timeline,
managedFields) until it was deleted.

Here a body is let go whenever no timer runs for its object: after each event kopf processed
for it, and when its last timer exits. A timer that starts later (a person reopens an
Incident) gets the body of the event that starts it, as on a first event.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from kopf._core.engines import daemons
from kopf._core.reactor import processing

from mitigator.handlers.kopf_hooks import wrap_once

Coroutinefunction = Callable[..., Coroutine[Any, Any, Any]]


def _drop_if_idle(memory: daemons.DaemonsMemory) -> None:
    if not memory.running_daemons:
        memory.live_fresh_body = None


def _after_each_event(original: Coroutinefunction) -> Coroutinefunction:
    async def process_spawning_cause(*, memory: Any, **kwargs: Any) -> Any:
        try:
            return await original(memory=memory, **kwargs)
        finally:
            _drop_if_idle(memory.daemons_memory)

    return process_spawning_cause


def _after_each_timer(original: Coroutinefunction) -> Coroutinefunction:
    async def runner(*, memory: daemons.DaemonsMemory, **kwargs: Any) -> None:
        try:
            await original(memory=memory, **kwargs)
        finally:
            # kopf's own `finally` has taken this timer out of `running_daemons` by now.
            _drop_if_idle(memory)

    return runner


def release_idle_bodies() -> bool:
    """Install both hooks (once). False if this kopf has not the two functions (kopf then
    only keeps more memory than it needs)."""
    if getattr(processing, "process_spawning_cause", None) is None:
        return False
    if getattr(daemons, "_runner", None) is None:
        return False
    wrap_once(processing, "process_spawning_cause", _after_each_event)
    wrap_once(daemons, "_runner", _after_each_timer)
    return True
