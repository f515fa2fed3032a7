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
from mitigator.domain.ceilings import Ceilings
from mitigator.domain.selection import policy_candidate, selector_matches
from mitigator.handlers.indexes import policies_in
from mitigator.handlers.leadership import leading
from mitigator.handlers.world import Cluster
from mitigator.models import JsonObject, format_timestamp


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
        else format_timestamp(datetime.now(UTC))
    )
    return {
        "type": "Valid",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
        "observedGeneration": generation,
    }


def policy_status(
    policy: JsonObject, deployments: list[JsonObject], *, ceilings: Ceilings | None = None
) -> JsonObject:
    """The status a policy should have: validity (within the operator's ceilings), and which
    Deployments it selects."""
    candidate = policy_candidate(
        policy["metadata"]["name"],
        policy.get("spec"),
        namespace=policy["metadata"].get("namespace"),
        ceilings=ceilings,
    )
    old = dict(policy.get("status") or {})
    generation = int(policy["metadata"].get("generation", 0))
    if candidate.spec is None:
        covered: list[str] = []
        condition = _valid_condition(
            old.get("conditions") or [],
            valid=False,
            reason="NotAllowed" if candidate.not_allowed else "InvalidSpec",
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


def policy_changed(
    event: kopf.RawEvent, body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any
) -> None:
    if event.get("type") == "DELETED" or not leading(memo):
        return
    cluster: Cluster = memo.cluster
    changes = policy_status(
        dict(body),
        cluster.kube.list_deployments(str(body["metadata"]["namespace"])),
        ceilings=memo.settings.ceilings(),
    )
    if changes:
        patch.status.update(changes)


def deployment_changed(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    """Deployments come and go without touching any policy: keep coverage current."""
    namespace = str(body["metadata"]["namespace"])
    policies = policies_in(kwargs, namespace)
    if not policies or not leading(memo):
        return
    cluster: Cluster = memo.cluster
    deployments = cluster.kube.list_deployments(namespace)
    for policy in policies:
        changes = policy_status(policy.body, deployments, ceilings=memo.settings.ceilings())
        if changes:
            cluster.kube.patch_policy_status(namespace, policy.candidate.name, changes)


def register(registry: kopf.OperatorRegistry) -> None:
    kopf.on.event(API_GROUP, API_VERSION, POLICY_PLURAL, id="policy", registry=registry)(
        policy_changed
    )
    kopf.on.event("apps", "v1", "deployments", id="deployment", registry=registry)(
        deployment_changed
    )
