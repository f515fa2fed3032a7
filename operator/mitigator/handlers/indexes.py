"""In-memory indexes kopf keeps current from its watches, so that a tick answers "which
policies are in this namespace" and "which incidents are live" without listing. (The
Deployments are the operator's own cache: deployments.py.)"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from mitigator import API_GROUP, API_VERSION, INCIDENT_PLURAL, POLICY_PLURAL
from mitigator.domain.ceilings import Ceilings
from mitigator.domain.selection import PolicyCandidate, policy_candidate
from mitigator.models import ActionState, JsonObject, Phase, parse_timestamp
from mitigator.models.evidence import Contender
from mitigator.settings import OperatorSettings

POLICIES = "policies_by_namespace"
CONTENDERS = "live_incidents_by_namespace"


@dataclass(frozen=True)
class IndexedPolicy:
    """A policy validated once per change, with the body its status is computed from."""

    candidate: PolicyCandidate
    body: JsonObject


def index_policy(
    *, namespace: str | None, name: str, body: kopf.Body, ceilings: Ceilings | None = None, **_: Any
) -> dict[str, IndexedPolicy]:
    raw: JsonObject = {
        "metadata": dict(body.get("metadata", {})),
        "spec": dict(body.get("spec") or {}),
        "status": dict(body.get("status") or {}),
    }
    # The operator's ceilings make a policy that exceeds them invalid here, so no tick ever
    # uses what it names.
    candidate = policy_candidate(name, raw["spec"], namespace=namespace, ceilings=ceilings)
    return {str(namespace): IndexedPolicy(candidate, raw)}


def index_contender(
    *,
    namespace: str | None,
    name: str,
    uid: str,
    spec: kopf.Spec,
    status: kopf.Status,
    **_: Any,
) -> dict[str, Contender]:
    """Incidents the operator still moves on, as the concurrency limit sees them. (An empty
    result takes a finished incident out: kopf keeps the last value when given None.)"""
    phase = Phase.of(status.get("phase"))
    if not phase.advances_by_itself:
        return {}
    detected = status.get("detectedAt")
    holds_claim = phase is not Phase.TRIAGING and any(
        action.get("state") == ActionState.APPLIED for action in status.get("actions") or ()
    )
    contender = Contender(
        uid=uid,
        name=name,
        detected_at=parse_timestamp(detected) if detected else None,
        holds_claim=holds_claim,
        waiting=phase is Phase.MITIGATING and not holds_claim,
        target=str((spec.get("target") or {}).get("name", "")),
    )
    return {str(namespace): contender}


def policies_in(handler_kwargs: Mapping[str, Any], namespace: str) -> list[IndexedPolicy]:
    """The policies of `namespace`, from the index kopf passes to every handler."""
    index: kopf.Index[str, IndexedPolicy] = handler_kwargs[POLICIES]
    return list(index.get(namespace, ()))


def contenders_in(handler_kwargs: Mapping[str, Any], namespace: str) -> list[Contender]:
    """The live incidents of `namespace`, from kopf's index."""
    index: kopf.Index[str, Contender] = handler_kwargs[CONTENDERS]
    return list(index.get(namespace, ()))


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    ceilings = settings.ceilings()

    # Async on purpose: kopf runs a sync handler in its thread pool, the one the ticks share,
    # and these run for every event of every Incident (thousands at a start with many
    # objects); they only compute, so the event loop runs them without a thread hop.
    async def policies(**kwargs: Any) -> dict[str, IndexedPolicy]:
        return index_policy(**kwargs, ceilings=ceilings)

    async def contenders(**kwargs: Any) -> dict[str, Contender]:
        return index_contender(**kwargs)

    kopf.index(API_GROUP, API_VERSION, POLICY_PLURAL, id=POLICIES, registry=registry)(policies)
    kopf.index(API_GROUP, API_VERSION, INCIDENT_PLURAL, id=CONTENDERS, registry=registry)(
        contenders
    )
