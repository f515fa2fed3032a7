"""In-memory indexes kopf keeps current from its watches, so that a tick answers "which
policies are in this namespace" and "which incidents are mitigating" without listing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from mitigator import API_GROUP, API_VERSION, INCIDENT_PLURAL, POLICY_PLURAL
from mitigator.domain.selection import PolicyCandidate, policy_candidate
from mitigator.models import JsonObject, Phase

POLICIES = "policies_by_namespace"
MITIGATING = "mitigating_incidents_by_namespace"


@dataclass(frozen=True)
class IndexedPolicy:
    """A policy validated once per change, with the body its status is computed from."""

    candidate: PolicyCandidate
    body: JsonObject


def index_policy(
    *, namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[str, IndexedPolicy]:
    raw: JsonObject = {
        "metadata": dict(body.get("metadata", {})),
        "spec": dict(body.get("spec") or {}),
        "status": dict(body.get("status") or {}),
    }
    return {str(namespace): IndexedPolicy(policy_candidate(name, raw["spec"]), raw)}


def index_mitigating(
    *, namespace: str | None, uid: str, status: kopf.Status, **_: Any
) -> dict[str, str] | None:
    """Incidents with an action applied and the outcome not settled (Mitigating, Verifying)."""
    return {str(namespace): uid} if Phase.of(status.get("phase")).is_mitigating else None


def policies_in(handler_kwargs: Mapping[str, Any], namespace: str) -> list[IndexedPolicy]:
    """The policies of `namespace`, from the index kopf passes to every handler."""
    index: kopf.Index[str, IndexedPolicy] = handler_kwargs[POLICIES]
    return list(index.get(namespace, ()))


def mitigating_in(handler_kwargs: Mapping[str, Any], namespace: str) -> list[str]:
    """The uids of the incidents of `namespace` being mitigated, from kopf's index."""
    index: kopf.Index[str, str] = handler_kwargs[MITIGATING]
    return list(index.get(namespace, ()))


def register(registry: kopf.OperatorRegistry) -> None:
    kopf.index(API_GROUP, API_VERSION, POLICY_PLURAL, id=POLICIES, registry=registry)(index_policy)
    kopf.index(API_GROUP, API_VERSION, INCIDENT_PLURAL, id=MITIGATING, registry=registry)(
        index_mitigating
    )
