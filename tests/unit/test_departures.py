"""The Incident timers carry no finalizer, and refuse an Incident the watch reported deleted."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from mitigator.handlers import register
from mitigator.handlers.departures import Departures, watch_departures
from mitigator.settings import OperatorSettings


def _incident_timers(registry: kopf.OperatorRegistry) -> dict[str, Any]:
    return {
        handler.id: handler
        for handler in registry._spawning.get_all_handlers()
        if handler.selector is not None and handler.selector.any_name == "incidents"
    }


def test_the_incident_timers_need_no_finalizer() -> None:
    registry = kopf.OperatorRegistry()
    register(registry, OperatorSettings())
    timers = _incident_timers(registry)
    assert set(timers) == {"tick", "escalate"}
    assert all(handler.requires_finalizer is False for handler in timers.values())
    # ...and no other timer or daemon anywhere would bring kopf's finalizer back.
    assert all(h.requires_finalizer is False for h in registry._spawning.get_all_handlers())


def test_a_departed_uid_is_refused_and_others_are_asked() -> None:
    departures = Departures()
    asked: list[str] = []

    def when(uid: str, **_: Any) -> bool:
        asked.append(uid)
        return True

    admitting = departures.admitting(when)
    departures.add("gone")
    assert admitting(uid="gone") is False
    assert admitting(uid="here") is True
    assert asked == ["here"]


def test_departures_keep_the_newest_only() -> None:
    departures = Departures(remembered=2)
    for uid in ("a", "b", "c"):
        departures.add(uid)
    assert "a" not in departures
    assert "b" in departures and "c" in departures


def test_an_incident_back_in_the_watch_is_admitted_again() -> None:
    """An Incident the tick settled while a page went out is un-settled by the escalation
    handler's write: the filtered watch brings it back (ADDED), and its timers must run."""
    registry = kopf.OperatorRegistry()
    departures = Departures()

    watch_departures(registry, departures)
    (handler,) = [h for h in registry._watching.get_all_handlers() if h.id == "departures"]
    departed: Any = handler.fn
    asyncio.run(departed(type="DELETED", uid="u", memo=kopf.Memo()))
    assert "u" in departures
    asyncio.run(departed(type="ADDED", uid="u", memo=kopf.Memo()))
    assert "u" not in departures


def test_an_incident_back_in_the_watch_keeps_the_last_write_this_process_made() -> None:
    """Settled, it left the watch (kopf forgot its memo); an etcd restored from a backup
    brings it back with an older status. The new memo carries the sequence of the last write,
    so the tick sees the stored status behind it and says that the store lost writes
    (freshness.py) instead of taking the older status as the latest."""
    registry = kopf.OperatorRegistry()
    departures = Departures()
    watch_departures(registry, departures)
    (handler,) = [h for h in registry._watching.get_all_handlers() if h.id == "departures"]
    departed: Any = handler.fn
    asyncio.run(departed(type="DELETED", uid="u", memo=kopf.Memo(sequence=7)))
    back = kopf.Memo()
    asyncio.run(departed(type="ADDED", uid="u", memo=back))
    assert back["sequence"] == 7
    # Never written by this process: nothing to carry over.
    asyncio.run(departed(type="DELETED", uid="v", memo=kopf.Memo()))
    fresh = kopf.Memo()
    asyncio.run(departed(type=None, uid="v", memo=fresh))
    assert "sequence" not in fresh
