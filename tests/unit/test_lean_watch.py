"""kopf's watch hands on objects without what no handler reads (handlers/lean_watch.py):
managedFields; errors and bookmarks untouched."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

from kopf._cogs.clients import watching
from kopf._cogs.structs import references

from mitigator.handlers.lean_watch import lean_watch

INCIDENTS = references.Resource(
    group="mitigator.luminamind.io", version="v1alpha1", plural="incidents"
)
MANAGED = [{"manager": "kube-controller-manager", "fieldsV1": {"f:status": {}}}]


def _object(kind: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": "u1",
            "resourceVersion": "7",
            "labels": {"app": "web"},
            "managedFields": copy.deepcopy(MANAGED),
        },
        "spec": {"replicas": 3},
        "status": {"readyReplicas": 3},
    }


def _through_watch(resource: references.Resource, events: list[Any]) -> list[Any]:
    closed: list[bool] = []

    async def source(**_: Any) -> AsyncIterator[Any]:
        try:
            for event in events:
                yield event
        finally:
            closed.append(True)

    saved = watching.continuous_watch
    watching.continuous_watch = source
    try:
        assert lean_watch()
        patched = watching.continuous_watch

        async def collect() -> list[Any]:
            return [item async for item in patched(resource=resource)]

        seen = asyncio.run(collect())
    finally:
        watching.continuous_watch = saved
    assert closed == [True]  # the wrapped stream is closed with the wrapper
    return seen


def test_an_incident_keeps_spec_and_status_without_managed_fields() -> None:
    [event] = _through_watch(INCIDENTS, [{"type": "ADDED", "object": _object("Incident")}])
    assert event["object"]["spec"] == {"replicas": 3}
    assert event["object"]["status"] == {"readyReplicas": 3}
    assert "managedFields" not in event["object"]["metadata"]


def test_errors_and_bookmarks_pass_as_they_came() -> None:
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}
    bookmark = {"type": "BOOKMARK", "object": {"kind": "Incident", "metadata": {"x": 1}}}
    expected = copy.deepcopy([gone, bookmark])
    assert _through_watch(INCIDENTS, [gone, bookmark]) == expected


def test_the_operator_installs_it_on_kopf() -> None:
    assert lean_watch()
    assert getattr(watching.continuous_watch, "_mitigator_wrapped", False)
