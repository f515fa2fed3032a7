"""kopf's start-up readiness wait, made linear in the number of objects.

Before any handler runs, kopf lets every indexed object be indexed (our indexes: policies,
live incidents): during its first listing each new object of an indexed
kind adds a toggle to one `ToggleSet`, and each object's worker, once it has indexed its
object, drops its toggle and waits on the set (`wait_for(True)`) until all are dropped. Every
toggle added or dropped `notify_all()`s the set's condition, which wakes every worker already
waiting; each takes the condition's lock in turn to re-check. With N objects that is about
N x N wake-ups in the event loop: with 5,000 Deployments and 5,000 resolved Incidents in a
namespace the operator had not finished starting after 5 minutes (py-spy: the watcher inside
`ToggleSet.make_toggle` -> `Condition.notify_all`, kopf 1.45.2).

The fix keeps kopf's semantics (no handler runs before every index is complete) and changes
only who waits on the condition: one shared task per (set, state) waits exactly as kopf did,
and every worker awaits that task. A change of the set then wakes one task, not thousands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from kopf._cogs.aiokits import aiotoggles

from mitigator.handlers.kopf_hooks import wrap_once
from mitigator.handlers.start_listing import EXEMPT

_WAITS = "_mitigator_shared_waits"

Waiter = Callable[[aiotoggles.ToggleSet, bool], Coroutine[Any, Any, None]]


def _shared_wait(original: Waiter) -> Waiter:
    async def wait_for(self: aiotoggles.ToggleSet, state: bool) -> None:
        state = bool(state)
        if state and EXEMPT.get():
            return  # an object whose handlers read no index (start_listing.py)
        if self.is_on() == state:
            return  # the common case once started: no lock, no task
        waits: dict[bool, asyncio.Future[None]] = self.__dict__.setdefault(_WAITS, {})
        shared = waits.get(state)
        if shared is None or shared.done():
            shared = waits[state] = asyncio.ensure_future(original(self, state))
        # A waiter cancelled (its object deleted, the operator stopping) must not cancel
        # the wait the others share.
        await asyncio.shield(shared)

    return wait_for


def make_readiness_wait_linear() -> bool:
    """Install the shared wait on kopf's ToggleSet (once). False if this kopf has no such
    class or wait (then kopf's own is left as it is)."""
    toggle_set = getattr(aiotoggles, "ToggleSet", None)
    return toggle_set is not None and wrap_once(toggle_set, "wait_for", _shared_wait)
