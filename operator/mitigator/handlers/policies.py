"""MitigationPolicies are GitOps-owned: the operator never writes their spec, nor adds
finalizers or progress annotations to them; it writes only their status: a Valid condition
with the reason, and the Deployments each policy currently covers.

Event handlers only (kopf stores nothing on the object for them): a policy's own events
refresh its validity and coverage. Deployments are not kopf's: the operator's own cache
(deployments.py, deployment_watch.py) calls `deployment_moved` when one comes, goes or
changes its labels, and `namespaces_listed` after each listing; coverage is always computed
from the complete cache (none before its first listing: that listing computes every policy).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from mitigator import API_GROUP, API_VERSION, POLICY_PLURAL
from mitigator.domain.ceilings import Ceilings
from mitigator.domain.selection import policy_candidate, selector_matches
from mitigator.handlers.deployments import DeploymentCache
from mitigator.handlers.indexes import IndexedPolicy
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


def _deployments(cache: DeploymentCache, namespace: str) -> list[JsonObject]:
    """The namespace's Deployments from the cache, in the shape `policy_status` reads."""
    return [
        {"metadata": {"name": d.name, "labels": d.labels}} for d in cache.in_namespace(namespace)
    ]


def policy_changed(
    event: kopf.RawEvent, body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any
) -> None:
    if event.get("type") == "DELETED" or not leading(memo):
        return
    namespace = str(body["metadata"]["namespace"])
    cluster: Cluster = memo.cluster
    # The policy as it now stands (its own status included) is the reference again.
    cluster.coverage_written.pop((namespace, str(body["metadata"]["name"])), None)
    if not cluster.deployments.synced:
        # Not from a half-listed cache: its first listing computes this policy's status
        # (`namespaces_listed`), from the policies index, where this policy already is.
        return
    changes = policy_status(
        dict(body), _deployments(cluster.deployments, namespace), ceilings=memo.settings.ceilings()
    )
    if changes:
        patch.status.update(changes)


def _coverage_moves(
    policy: IndexedPolicy,
    name: str,
    labels: dict[str, str] | None,
    *,
    written: frozenset[str] | None,
) -> bool:
    """Whether this Deployment's change moves what the policy says it covers (`labels` None:
    the Deployment is gone; `written`: the coverage this process last wrote, newer than the
    indexed policy's)."""
    spec = policy.candidate.spec
    if written is None:
        written = frozenset((policy.body.get("status") or {}).get("coveredDeployments") or ())
    covered = name in written
    if spec is None:
        return covered
    return covered != (labels is not None and selector_matches(spec.selector, labels))


Policies = Mapping[str, Iterable[IndexedPolicy]]  # kopf's policies index, by namespace


async def deployment_moved(memo: kopf.Memo, policies: Policies, namespace: str, name: str) -> None:
    """A Deployment came, went or changed its labels (the cache already says so): keep the
    coverage of its namespace's policies current. Runs in the event loop; it almost always
    decides in memory that nothing moved, and only a write goes to a thread."""
    cluster: Cluster = memo.cluster
    if not leading(memo) or not cluster.deployments.synced:
        return
    found = cluster.deployments.get(namespace, name)
    labels = None if found is None else found.labels
    written = cluster.coverage_written
    moving = [
        p
        for p in policies.get(namespace, ())
        if _coverage_moves(p, name, labels, written=written.get((namespace, p.candidate.name)))
    ]
    if moving:
        await _write_coverage(memo, namespace, moving, unless_written=False)


async def namespaces_listed(memo: kopf.Memo, policies: Policies, namespaces: Iterable[str]) -> None:
    """After a listing: the status of every policy of `namespaces` from the complete cache
    (what this process last wrote is not written again)."""
    cluster: Cluster = memo.cluster
    if not leading(memo) or not cluster.deployments.synced:
        return
    for namespace in namespaces:
        await _write_coverage(
            memo, namespace, list(policies.get(namespace, ())), unless_written=True
        )


async def _write_coverage(
    memo: kopf.Memo, namespace: str, policies: list[IndexedPolicy], *, unless_written: bool
) -> None:
    cluster: Cluster = memo.cluster
    written = cluster.coverage_written
    deployments = _deployments(cluster.deployments, namespace)
    for policy in policies:
        key = (namespace, policy.candidate.name)
        changes = policy_status(policy.body, deployments, ceilings=memo.settings.ceilings())
        covered = frozenset(changes.get("coveredDeployments", _indexed_coverage(policy)))
        if unless_written and written.get(key) == covered:
            continue
        # Recorded before the write is awaited: the changes that arrive meanwhile (a start, a
        # burst: hundreds at once) then compare with it and do not each write it again.
        written[key] = covered
        if changes:
            try:
                await asyncio.to_thread(
                    cluster.kube.patch_policy_status, namespace, policy.candidate.name, changes
                )
            except Exception:
                written.pop(key, None)  # not written: the next change compares afresh
                raise


def _indexed_coverage(policy: IndexedPolicy) -> list[str]:
    return list((policy.body.get("status") or {}).get("coveredDeployments") or ())


def register(registry: kopf.OperatorRegistry) -> None:
    kopf.on.event(API_GROUP, API_VERSION, POLICY_PLURAL, id="policy", registry=registry)(
        policy_changed
    )
