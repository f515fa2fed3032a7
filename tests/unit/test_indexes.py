"""kopf's in-memory indexes, as the operator fills them from an Incident's status."""

from __future__ import annotations

from typing import Any

import kopf

from mitigator.handlers.indexes import index_contender


def _index(status: dict[str, Any]) -> dict[str, Any]:
    body = kopf.Body({"spec": {"target": {"name": "web"}}, "status": status})
    return index_contender(
        namespace="prod", name="inc", uid="u1", spec=body.spec, status=body.status, body=body
    )


def test_a_finished_incident_leaves_the_index() -> None:
    # An empty mapping, not None: kopf keeps an object's previous value when given None.
    for phase in ("Resolved", "Failed", "Suppressed", "Escalated"):
        assert _index({"phase": phase}) == {}


def test_holding_and_waiting() -> None:
    applied = {"phase": "Verifying", "actions": [{"state": "Applied"}]}
    [holder] = _index(applied).values()
    assert holder.holds_claim and not holder.waiting and holder.target == "web"
    waiting = {"phase": "Mitigating", "detectedAt": "2026-11-28T08:00:00Z", "actions": []}
    [waiter] = _index(waiting).values()
    assert waiter.waiting and not waiter.holds_claim and waiter.detected_at is not None
    [new] = _index({}).values()
    assert not new.waiting and not new.holds_claim
