"""kopf lets an object's body go when no timer runs for it (handlers/idle_bodies.py), through
kopf's own spawning and timer code."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
from kopf._cogs.structs import bodies, patches, references
from kopf._core.engines import daemons
from kopf._core.intents import causes
from kopf._core.reactor import inventory, processing

from mitigator import API_GROUP, API_VERSION, INCIDENT_PLURAL
from mitigator.handlers import register
from mitigator.handlers.idle_bodies import release_idle_bodies
from mitigator.settings import OperatorSettings

INCIDENTS = references.Resource(
    group=API_GROUP, version=API_VERSION, plural=INCIDENT_PLURAL, namespaced=True
)


def _incident(phase: str) -> bodies.Body:
    raw: dict[str, Any] = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "Incident",
        "metadata": {"namespace": "shop", "name": "i1", "uid": "u1"},
        "spec": {"target": {"kind": "Deployment", "name": "web"}},
        "status": {"phase": phase, "detectedAt": "2026-11-28T10:00:00Z"},
    }
    return bodies.Body(raw)  # type: ignore[arg-type]


async def _spawn(registry: kopf.OperatorRegistry, body: bodies.Body) -> inventory.ResourceMemory:
    memory = inventory.ResourceMemory()
    cause = causes.detect_spawning_cause(
        resource=INCIDENTS,
        indices={},
        logger=logging.getLogger("test"),
        patch=patches.Patch(),
        body=body,
        memo=memory.memo,
        reset=False,
    )
    await processing.process_spawning_cause(
        registry=registry,
        settings=kopf.OperatorSettings(),
        memory=memory,
        cause=cause,
        operator_paused=None,
    )
    return memory


def test_a_resolved_incident_keeps_no_body() -> None:
    registry = kopf.OperatorRegistry()
    register(registry, OperatorSettings())  # installs the hooks, as the operator does
    memory = asyncio.run(_spawn(registry, _incident("Resolved")))
    assert memory.daemons_memory.running_daemons == {}
    assert memory.daemons_memory.live_fresh_body is None


def test_a_body_is_kept_while_its_timer_runs_and_let_go_when_it_stops() -> None:
    assert release_idle_bodies()
    registry = kopf.OperatorRegistry()

    def idle(**_: Any) -> None:
        return None

    kopf.timer(API_GROUP, API_VERSION, INCIDENT_PLURAL, interval=3600, registry=registry)(idle)

    async def scenario() -> None:
        memory = await _spawn(registry, _incident("Verifying"))
        running = memory.daemons_memory.running_daemons
        assert len(running) == 1
        assert memory.daemons_memory.live_fresh_body is not None  # the timer's live view
        await daemons.stop_daemons(settings=kopf.OperatorSettings(), daemons=dict(running))
        await asyncio.wait_for(
            asyncio.gather(*(daemon.task for daemon in list(running.values()))), timeout=10
        )
        assert running == {}
        assert memory.daemons_memory.live_fresh_body is None

    asyncio.run(scenario())
