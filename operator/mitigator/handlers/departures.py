"""Timers on Incidents without kopf's finalizer, stopped by the watch's DELETED event instead.

kopf puts a finalizer on every object that has a timer, so that it can stop the timer before
the object is gone. For us that cost two writes per Incident (the finalizer added on its first
event, removed when it settles), two more watch events to process, and Incidents stuck in
deletion whenever the operator was uninstalled or stopped before them (docs/INSTALL.md).

Our ticks have nothing to clean up at deletion: what they change is recorded on the target
itself (actions/marker.py) and the evidence ConfigMap is owned by the Incident (garbage
collected). What the finalizer gave, no tick after the Incident is gone, comes from the watch:
a DELETED event puts the Incident's uid here; kopf re-checks a timer's filter on every event
and stops a timer whose filter no longer admits its object; the filters below refuse a
departed uid, and a tick that was already queued when the event came checks it again first.

The same DELETED comes when an Incident is written settled (or turns Failed or Suppressed):
the watch's field selector leaves those out (watch_selection.py), and the API server tells a
filtered watch that an object stopped matching as if it were deleted. Handling it as a
deletion is right: no timer may run for it any more, and kopf writes nothing on a DELETED
event.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import kopf

from mitigator import API_GROUP, API_VERSION, INCIDENT_PLURAL

# A uid is only asked about while its DELETED event is processed and by a tick queued just
# before it; a bound keeps a namespace deleted with 100,000 Incidents from growing the set.
REMEMBERED = 10_000


class Departures:
    """The uids of Incidents the watch reported deleted (the newest REMEMBERED of them), each
    with the last status `sequence` this process wrote to it (freshness.py), if any."""

    def __init__(self, remembered: int = REMEMBERED) -> None:
        self._uids: OrderedDict[str, int | None] = OrderedDict()
        self._remembered = remembered

    def add(self, uid: str, *, sequence: int | None = None) -> None:
        self._uids[uid] = sequence
        self._uids.move_to_end(uid)
        while len(self._uids) > self._remembered:
            self._uids.popitem(last=False)

    def discard(self, uid: str) -> int | None:
        """Back in the watch: no longer departed; the sequence remembered for it, if any."""
        return self._uids.pop(uid, None)

    def __contains__(self, uid: object) -> bool:
        return uid in self._uids

    def admitting(self, when: Callable[..., bool]) -> Callable[..., bool]:
        """`when`, refusing any Incident the watch reported deleted."""

        def still_here(**kwargs: Any) -> bool:
            return kwargs.get("uid") not in self and when(**kwargs)

        return still_here


def watch_departures(registry: kopf.OperatorRegistry, departures: Departures) -> None:
    """Record each Incident's DELETED event. kopf runs event handlers before it re-checks the
    timers' filters in the same pass, so the timer stops on that very event."""

    async def departed(type: str | None, uid: str | None, memo: kopf.Memo, **_: Any) -> None:
        if type == "DELETED" and uid:
            departures.add(uid, sequence=memo.get("sequence"))
        elif uid:
            # Back in the watch (un-settled by escalation.py, or its settling undone by an
            # etcd restored from a backup): its timers may run. kopf made it a new memo; the
            # last write this process made to it carries over, so that a status the store
            # lost is still noticed (freshness.py) rather than taken as the latest.
            sequence = departures.discard(uid)
            if sequence is not None and "sequence" not in memo:
                memo["sequence"] = sequence

    kopf.on.event(API_GROUP, API_VERSION, INCIDENT_PLURAL, id="departures", registry=registry)(
        departed
    )


def add_incident_timer(
    registry: kopf.OperatorRegistry,
    handler: Callable[..., None],
    *,
    handler_id: str,
    interval: float,
    when: Callable[..., bool],
    departures: Departures,
) -> None:
    """A timer on every Incident `when` admits until the watch reports it deleted; a failure
    is retried after 2 s. No finalizer (the module's docstring says why)."""

    def unless_departed(**kwargs: Any) -> Any:
        # Queued in kopf's executor before the DELETED event came: the object is gone.
        if kwargs.get("uid") in departures:
            return None
        return handler(**kwargs)

    kopf.timer(
        API_GROUP,
        API_VERSION,
        INCIDENT_PLURAL,
        id=handler_id,
        backoff=2,
        interval=interval,
        when=departures.admitting(when),
        registry=registry,
    )(unless_departed)
    _drop_finalizer(registry, handler_id)


def _drop_finalizer(registry: kopf.OperatorRegistry, handler_id: str) -> None:
    # kopf.timer() hard-codes requires_finalizer=True and offers no option; its handlers are
    # frozen dataclasses, so the registered one is replaced by a copy. Fails at start, not
    # silently, if kopf's registry ever changes shape.
    spawning = registry._spawning._handlers
    for position, registered in enumerate(spawning):
        if registered.id == handler_id:
            spawning[position] = dataclasses.replace(registered, requires_finalizer=False)
            return
    raise RuntimeError(f"timer {handler_id!r} not found in kopf's registry")
