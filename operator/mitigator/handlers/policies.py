"""MitigationPolicies are GitOps-owned: the operator never writes their spec, only their
status (Valid/Invalid with the reason, and the Deployments they cover). Event and timer
handlers only, so kopf keeps no progress or diff-base annotations on the policy either."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf

from mitigator import API_GROUP, API_VERSION, POLICY_PLURAL
from mitigator.domain.selection import selector_matches
from mitigator.handlers.settings import OperatorSettings
from mitigator.handlers.world import ClusterWorld, parse_policy

_REFRESH = OperatorSettings.from_environment().policy_refresh_seconds


def _condition(old: list[dict[str, Any]], *, valid: bool, reason: str, message: str, generation: int) -> dict[str, Any]:
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


def _refresh_status(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo) -> None:
    world: ClusterWorld = memo.world
    candidate = parse_policy(dict(body))
    status = dict(body.get("status") or {})
    generation = int(body["metadata"].get("generation", 0))
    if candidate.spec is None:
        new = {
            "conditions": [
                _condition(
                    status.get("conditions") or [],
                    valid=False,
                    reason="InvalidSpec",
                    message=candidate.invalid_reason or "invalid",
                    generation=generation,
                )
            ],
            "observedGeneration": generation,
            "coveredDeployments": [],
            "coveredCount": 0,
        }
    else:
        namespace = body["metadata"]["namespace"]
        covered = sorted(
            d["metadata"]["name"]
            for d in world.kube.list_deployments(namespace)
            if selector_matches(candidate.spec.selector, d["metadata"].get("labels") or {})
        )
        new = {
            "conditions": [
                _condition(
                    status.get("conditions") or [],
                    valid=True,
                    reason="Valid",
                    message=f"{len(candidate.spec.rules)} rules; covers {len(covered)} Deployments",
                    generation=generation,
                )
            ],
            "observedGeneration": generation,
            "coveredDeployments": covered,
            "coveredCount": len(covered),
        }
    changed = {k: v for k, v in new.items() if status.get(k) != v}
    if changed:
        patch.status.update(changed)


@kopf.on.event(API_GROUP, API_VERSION, POLICY_PLURAL)
def policy_changed(
    type: str, body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any
) -> None:
    if type == "DELETED":
        return
    _refresh_status(body, patch, memo)


@kopf.timer(API_GROUP, API_VERSION, POLICY_PLURAL, interval=_REFRESH, idle=None)
def policy_coverage(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    """Deployments come and go without touching the policy: look again now and then."""
    _refresh_status(body, patch, memo)
