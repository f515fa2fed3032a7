"""Which Incidents kopf's watch leaves out (handlers/watch_selection.py): only phases for which
no handler of ours would ever run again; and a CRD without the selectable field falls back to
watching every Incident."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import kopf
import pytest
from kopf._cogs.clients import errors
from kopf._cogs.structs import references

from mitigator.handlers.escalation import needs_notice
from mitigator.handlers.incidents import needs_tick
from mitigator.handlers.indexes import CONTENDERS, POLICIES, index_contender
from mitigator.handlers.watch_selection import (
    _falling_back,
    incident_field_selector,
    left_out,
    select_incidents,
)
from mitigator.models import Phase

INCIDENTS = references.Resource(
    group="mitigator.luminamind.io", version="v1alpha1", plural="incidents", kind="Incident"
)
DEPLOYMENTS = references.Resource(group="apps", version="v1", plural="deployments")
NOW = "2026-01-01T00:00:00Z"
# A level that was told of the incident and not yet of its resolution.
TOLD = {"level": 1, "delivered": True, "notifiedAt": NOW}


def _statuses(phase: Phase) -> list[dict[str, Any]]:
    """Statuses of this phase that would keep a handler interested if any could."""
    base = {"phase": phase.value, "detectedAt": NOW, "policy": "runbooks"}
    return [
        base,
        {**base, "escalation": {"levels": [TOLD]}},
        {**base, "escalation": {"levels": [{**TOLD, "resolveAttempts": 1}]}},
    ]


def _specs() -> list[dict[str, Any]]:
    target = {"kind": "Deployment", "name": "web"}
    return [{"target": target}, {"target": target, "resolve": True}]


def test_the_selector_leaves_out_failed_and_suppressed_only() -> None:
    assert incident_field_selector() == "status.phase!=Failed,status.phase!=Suppressed"
    assert [p for p in Phase if left_out(p.value)] == [Phase.FAILED, Phase.SUPPRESSED]
    assert not left_out(None)  # a new Incident has no phase yet


@pytest.mark.parametrize("phase", list(Phase))
def test_a_left_out_incident_is_one_no_handler_would_run_for(phase: Phase) -> None:
    """The handlers' own filters are the reference: a phase may be left out only if neither
    timer would ever admit an Incident in it, and the live-incidents index drops it."""
    kwargs: dict[str, Any] = {POLICIES: {}, CONTENDERS: {}}
    bodies = [
        kopf.Body({"metadata": {"name": "i", "uid": "u"}, "spec": spec, "status": status})
        for spec in _specs()
        for status in _statuses(phase)
    ]
    interested = any(
        needs_tick(spec=body.spec, status=body.status)
        or needs_notice(body.spec, body.status, "shop", **kwargs)
        or index_contender(namespace="shop", name="i", uid="u", spec=body.spec, status=body.status)
        for body in bodies
    )
    if left_out(phase.value):
        assert not interested
    if phase is Phase.RESOLVED:
        # Why Resolved stays in: its resolved notices still go out from the watch.
        assert interested


def test_the_selector_applies_to_incidents_only() -> None:
    settings = kopf.OperatorSettings()
    select_incidents(settings)
    assert settings.watching.field_selectors.collect(INCIDENTS) == [incident_field_selector()]
    assert settings.watching.field_selectors.collect(DEPLOYMENTS) == []


def _watch(failures: list[int]) -> tuple[list[Any], kopf.OperatorSettings, list[str]]:
    """The fallback around a watch that fails with each status of `failures` in turn, then
    yields one event: (events seen, the settings after, the selectors each attempt used)."""
    settings = kopf.OperatorSettings()
    select_incidents(settings)
    used: list[str] = []

    async def original(
        *, settings: kopf.OperatorSettings, resource: references.Resource, **_: Any
    ) -> AsyncIterator[Any]:
        used.append(",".join(settings.watching.field_selectors.collect(resource)))
        if failures:
            status = failures.pop(0)
            raise errors.APIClientError("field label not supported", status=status, headers={})
        yield {"type": "ADDED", "object": {"metadata": {"name": "web"}}}

    async def collect() -> list[Any]:
        wrapped = _falling_back(original)
        return [item async for item in wrapped(settings=settings, resource=INCIDENTS)]

    return asyncio.run(collect()), settings, used


def test_without_the_selectable_field_every_incident_is_watched() -> None:
    events, settings, used = _watch([400])
    assert used == [incident_field_selector(), ""]
    assert [e["type"] for e in events] == ["ADDED"]
    assert settings.watching.field_selectors.collect(INCIDENTS) == []


def test_other_errors_are_kopfs_to_handle() -> None:
    with pytest.raises(errors.APIClientError):
        _watch([403])


def test_a_served_selector_stays() -> None:
    events, settings, used = _watch([])
    assert used == [incident_field_selector()] and len(events) == 1
    assert settings.watching.field_selectors.collect(INCIDENTS) == [incident_field_selector()]
