"""Applying and reverting one action through the real executor, as the lifecycle asks for it
(with no guardrail in the way: the executor's own behaviour is what these tests look at)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mitigator.actions.executor import ActionExecutor
from mitigator.models import ActionStep, ActionType
from mitigator.models.evidence import TargetRead
from mitigator.models.execution import ActionOutcome, ActionRequest, RevertRequest

INCIDENT_UID = "uid-1"


def apply_step(
    executor: ActionExecutor,
    namespace: str,
    target: str,
    step: dict[str, Any],
    *,
    action_id: str,
    max_replicas: int = 10,
    read: TargetRead | None = None,
) -> ActionOutcome:
    """`step` as a policy writes it, e.g. {"scale": {"increment": 2}}; `read`: the target as
    a tick read it (None: the executor reads it)."""
    return executor.apply(
        ActionRequest(
            namespace=namespace,
            target=target,
            incident_uid=INCIDENT_UID,
            incident_name="inc-1",
            action_id=action_id,
            action=ActionStep.model_validate(step).action,
            admit=lambda _records: None,
            max_replicas=max_replicas,
            now=datetime.now(UTC),
            read=read,
        )
    )


def revert_step(
    executor: ActionExecutor,
    namespace: str,
    target: str,
    action_type: str,
    before: dict[str, Any],
    *,
    action_id: str,
    release_claim: bool = False,
) -> ActionOutcome:
    return executor.revert(
        RevertRequest(
            namespace=namespace,
            target=target,
            incident_uid=INCIDENT_UID,
            action_id=action_id,
            action_type=ActionType(action_type),
            before=before,
            now=datetime.now(UTC),
            release_claim=release_claim,
        )
    )
