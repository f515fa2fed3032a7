"""At a start, listed settled Incidents are indexed and do not wait for the other objects
(handlers/start_listing.py), through kopf's own event processing: the others wait as before."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
from kopf._cogs.aiokits import aiotoggles
from kopf._cogs.structs import ephemera, references
from kopf._core.actions import lifecycles
from kopf._core.engines import indexing, posting
from kopf._core.reactor import inventory, processing

from mitigator import API_GROUP, API_VERSION, INCIDENT_PLURAL
from mitigator.handlers.readiness import make_readiness_wait_linear
from mitigator.handlers.start_listing import exempt_settled_listings, settled_incident

INCIDENTS = references.Resource(
    group=API_GROUP, version=API_VERSION, plural=INCIDENT_PLURAL, namespaced=True
)
NOW = "2026-01-01T00:00:00Z"
TOLD = {"level": 1, "delivered": True, "notifiedAt": NOW}


def _incident(phase: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "shop", "name": "i1", "uid": "u1"},
        "spec": {"target": {"kind": "Deployment", "name": "web"}},
        "status": {"phase": phase, "detectedAt": NOW, **status},
    }


def test_a_settled_incident_is_final_with_no_notice_due() -> None:
    assert settled_incident(_incident("Failed"))
    assert settled_incident(_incident("Suppressed"))
    assert not settled_incident(_incident("Verifying"))
    assert not settled_incident(_incident("Escalated"))
    # Its resolved notice still to send: its timer reads the policies' index.
    assert not settled_incident(_incident("Resolved", escalation={"levels": [TOLD]}))
    # Nobody told, but the escalation timer's filter reads the policies' index to learn
    # whether it is the one to settle it (escalation.settled_by_the_tick).
    assert not settled_incident(_incident("Resolved"))


class Kind:
    """A registry with one index and one event handler on `resource`, the calls recorded."""

    def __init__(self, resource: references.Resource) -> None:
        self.resource = resource
        self.handled: list[str] = []
        self.registry = kopf.OperatorRegistry()
        selector = (resource.group, resource.version, resource.plural)

        async def index(name: str, **_: Any) -> dict[str, str]:
            return {"all": name}

        async def event(name: str, **_: Any) -> None:
            self.handled.append(name)

        kopf.index(*selector, id="names", registry=self.registry)(index)
        kopf.on.event(*selector, id="seen", registry=self.registry)(event)
        self.indexers = indexing.OperatorIndexers()
        self.indexers.ensure(self.registry._indexing.get_all_handlers())

    def indexed(self) -> list[str]:
        return list(self.indexers["names"].index.get("all", ()))

    async def process(
        self,
        raw: dict[str, Any],
        *,
        event_type: str | None,
        toggles: aiotoggles.ToggleSet,
        mine: aiotoggles.Toggle | None,
    ) -> None:
        await processing.process_resource_event(
            lifecycle=lifecycles.all_at_once,
            indexers=self.indexers,
            registry=self.registry,
            settings=kopf.OperatorSettings(),
            memories=inventory.ResourceMemories(),
            memobase=ephemera.AnyMemo(kopf.Memo()),
            resource=self.resource,
            raw_event={"type": event_type, "object": raw},  # type: ignore[typeddict-item]
            event_queue=posting.K8sEventQueue(),
            resource_indexed=mine,
            operator_indexed=toggles,
        )


async def _started(kind: Kind, raw: dict[str, Any], event_type: str | None = None) -> Any:
    """The object's event processed while another object is not indexed yet: (a task,
    whether it finished without waiting for that other object, the blocker's toggle)."""
    toggles = aiotoggles.ToggleSet(all)
    blocker = await toggles.make_toggle(name="another object")
    mine = await toggles.make_toggle(name="this object")
    task = asyncio.create_task(kind.process(raw, event_type=event_type, toggles=toggles, mine=mine))
    done, _ = await asyncio.wait([task], timeout=2)
    return task, bool(done), (toggles, blocker)


def test_a_listed_settled_incident_is_handled_without_waiting() -> None:
    assert make_readiness_wait_linear() and exempt_settled_listings()
    kind = Kind(INCIDENTS)

    async def scenario() -> None:
        task, finished, _ = await _started(kind, _incident("Failed"))
        assert finished
        await task
        assert kind.indexed() == ["i1"] and kind.handled == ["i1"]

    asyncio.run(scenario())


def test_others_wait_for_every_index() -> None:
    assert make_readiness_wait_linear() and exempt_settled_listings()
    cases = [
        (Kind(INCIDENTS), _incident("Verifying"), None),
        (Kind(INCIDENTS), _incident("Resolved", escalation={"levels": [TOLD]}), None),
        (Kind(INCIDENTS), _incident("Resolved"), None),
        (Kind(INCIDENTS), _incident("Failed"), "MODIFIED"),  # not the listing's event
    ]

    async def scenario() -> None:
        for kind, raw, event_type in cases:
            task, finished, (toggles, blocker) = await _started(kind, raw, event_type)
            assert not finished, raw
            assert kind.handled == []
            await toggles.drop_toggle(blocker)
            await asyncio.wait_for(task, timeout=10)
            assert kind.handled == [raw["metadata"]["name"]]

    asyncio.run(scenario())
