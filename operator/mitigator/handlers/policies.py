"""MitigationPolicies are GitOps-owned: the operator never writes their spec, nor adds
finalizers or progress annotations to them; it writes only their status: a Valid condition
with the reason, and the Deployments each policy currently covers.

Event handlers only (kopf stores nothing on the object for them): a policy's own events
refresh its validity and coverage; a Deployment's events refresh the coverage of the
policies in its namespace.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import kopf

from mitigator import API_GROUP, API_VERSION, POLICY_PLURAL
from mitigator.domain.ceilings import Ceilings
from mitigator.domain.selection import policy_candidate, selector_matches
from mitigator.handlers.indexes import IndexedPolicy, deployments_in, policies_in
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
            reason=candidate.invalid_kind,
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


def _deployments(handler_kwargs: Any, namespace: str) -> list[JsonObject]:
    """The namespace's Deployments from the watch's index, in the shape `policy_status` reads."""
    return [
        {"metadata": {"name": d.name, "labels": d.labels}}
        for d in deployments_in(handler_kwargs, namespace)
    ]


def policy_changed(
    event: kopf.RawEvent, body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **kwargs: Any
) -> None:
    if event.get("type") == "DELETED" or not leading(memo):
        return
    namespace = str(body["metadata"]["namespace"])
    changes = policy_status(
        dict(body), _deployments(kwargs, namespace), ceilings=memo.settings.ceilings()
    )
    if changes:
        patch.status.update(changes)
    # The policy as it now stands (its own status included) is the reference again.
    cluster: Cluster = memo.cluster
    cluster.coverage_written.pop((namespace, str(body["metadata"]["name"])), None)


def _coverage_moves(
    policy: IndexedPolicy,
    name: str,
    labels: dict[str, str] | None,
    *,
    written: frozenset[str] | None,
) -> bool:
    """Whether this Deployment's event changes what the policy says it covers (`labels` None:
    the Deployment is gone; `written`: the coverage this process last wrote, newer than the
    indexed policy's). Most events (status, rollouts) do not."""
    spec = policy.candidate.spec
    if written is None:
        written = frozenset((policy.body.get("status") or {}).get("coveredDeployments") or ())
    covered = name in written
    if spec is None:
        return covered
    return covered != (labels is not None and selector_matches(spec.selector, labels))


async def deployment_changed(
    event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **kwargs: Any
) -> None:
    """Deployments come and go without touching any policy: keep coverage current. Async: it
    runs for every event of every Deployment (a start, a burst of rollouts) and almost always
    decides in memory that nothing moved; only a write goes to a thread."""
    if not leading(memo):
        return
    namespace, name = str(body["metadata"]["namespace"]), str(body["metadata"]["name"])
    gone = event.get("type") == "DELETED"
    labels = None if gone else dict(body["metadata"].get("labels") or {})
    cluster: Cluster = memo.cluster
    written = cluster.coverage_written
    policies = [
        p
        for p in policies_in(kwargs, namespace)
        if _coverage_moves(p, name, labels, written=written.get((namespace, p.candidate.name)))
    ]
    if not policies:
        return
    deployments = [d for d in _deployments(kwargs, namespace) if d["metadata"]["name"] != name]
    if not gone:
        deployments.append({"metadata": {"name": name, "labels": labels}})
    for policy in policies:
        key = (namespace, policy.candidate.name)
        changes = policy_status(policy.body, deployments, ceilings=memo.settings.ceilings())
        # Recorded before the write is awaited: the events that arrive meanwhile (a start, a
        # burst: hundreds at once) then compare with it and do not each write it again.
        written[key] = frozenset(changes.get("coveredDeployments", _indexed_coverage(policy)))
        if changes:
            try:
                await asyncio.to_thread(
                    cluster.kube.patch_policy_status, namespace, policy.candidate.name, changes
                )
            except Exception:
                written.pop(key, None)  # not written: the next event compares afresh
                raise


def _indexed_coverage(policy: IndexedPolicy) -> list[str]:
    return list((policy.body.get("status") or {}).get("coveredDeployments") or ())


def register(registry: kopf.OperatorRegistry) -> None:
    kopf.on.event(API_GROUP, API_VERSION, POLICY_PLURAL, id="policy", registry=registry)(
        policy_changed
    )
    kopf.on.event("apps", "v1", "deployments", id="deployment", registry=registry)(
        deployment_changed
    )
