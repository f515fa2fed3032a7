"""MitigationPolicies are GitOps-owned: the operator never writes their spec, nor adds
finalizers or progress annotations to them; it writes only their status: a Valid condition
with the reason, and the Deployments each policy currently covers.

Event handlers only (kopf stores nothing on the object for them): a policy's own events
refresh its validity and coverage; a Deployment's events refresh the coverage of the
policies in its namespace.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf

from mitigator import API_GROUP, API_VERSION, POLICY_PLURAL
from mitigator.domain.selection import selector_matches
from mitigator.handlers.world import ClusterWorld, parse_policy

JsonObject = dict[str, Any]


def _valid_condition(
    old: list[JsonObject], *, valid: bool, reason: str, message: str, generation: int
) -> JsonObject:
    status = "True" if valid else "False"
    previous = next((c for c in old if c.get("type") == "Valid"), None)
    # lastTransitionTime moves only when the status flips: re-writing it on every event
    # would make each status write trigger another.
    transition = (
        previous["lastTransitionTime"]
        if previous and previous.get("status") == status
        else datetime.now(UTC).isoformat().replace("+00:00", "Z")
    )
    return {
        "type": "Valid",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
        "observedGeneration": generation,
    }


def policy_status(policy: JsonObject, deployments: list[JsonObject]) -> JsonObject:
    """The status a policy should have: validity, and which Deployments it selects."""
    candidate = parse_policy(policy)
    old = dict(policy.get("status") or {})
    generation = int(policy["metadata"].get("generation", 0))
    if candidate.spec is None:
        covered: list[str] = []
        condition = _valid_condition(
            old.get("conditions") or [],
            valid=False,
            reason="InvalidSpec",
            message=candidate.invalid_reason or "invalid",
            generation=generation,
        )
    else:
        spec = candidate.spec
        covered = sorted(
            d["metadata"]["name"]
            for d in deployments
            if selector_matches(spec.selector, d["metadata"].get("labels") or {})
        )
        condition = _valid_condition(
            old.get("conditions") or [],
            valid=True,
            reason="Valid",
            message=f"{len(spec.rules)} rules; covers {len(covered)} Deployments",
            generation=generation,
        )
    new = {
        "conditions": [condition],
        "observedGeneration": generation,
        "coveredDeployments": covered,
        "coveredCount": len(covered),
    }
    return {key: value for key, value in new.items() if old.get(key) != value}


@kopf.on.event(API_GROUP, API_VERSION, POLICY_PLURAL)
def policy_changed(
    event: kopf.RawEvent, body: kopf.Body, patch: kopf.Patch, memo: Any, **_: Any
) -> None:
    if event.get("type") == "DELETED":
        return
    world: ClusterWorld = memo.world
    changes = policy_status(
        dict(body), world.kube.list_deployments(str(body["metadata"]["namespace"]))
    )
    if changes:
        patch.status.update(changes)


@kopf.on.event("apps", "v1", "deployments")
def deployment_changed(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
    """Deployments come and go without touching any policy: keep coverage current."""
    namespace = str(body["metadata"]["namespace"])
    world: ClusterWorld = memo.world
    policies = world.kube.list_policies(namespace)
    if not policies:
        return
    deployments = world.kube.list_deployments(namespace)
    for policy in policies:
        changes = policy_status(policy, deployments)
        if changes:
            world.kube.patch_policy_status(namespace, policy["metadata"]["name"], changes)
