"""Standard conditions (metav1.Condition semantics) on Incident and policy statuses."""

from collections.abc import Sequence
from datetime import datetime

from mitigator.models import Condition, ConditionStatus, IncidentStatus, Phase

MAX_MESSAGE_LENGTH = 32768


def set_condition(
    conditions: Sequence[Condition] | None,
    *,
    condition_type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
    observed_generation: int | None = None,
) -> tuple[Condition, ...]:
    """The conditions with `condition_type` set, others untouched and in place.

    lastTransitionTime changes only when the status does, as with every Kubernetes condition:
    it says since when the condition has been what it is, not when it was last written.
    """
    existing = next(
        (condition for condition in conditions or () if condition.type == condition_type), None
    )
    transitioned = existing is None or existing.status != status
    updated = Condition(
        type=condition_type,
        status=status,
        reason=reason,
        message=message[:MAX_MESSAGE_LENGTH],
        last_transition_time=now
        if transitioned or existing is None
        else existing.last_transition_time,
        observed_generation=observed_generation,
    )
    if existing is None:
        return (*(conditions or ()), updated)
    return tuple(
        updated if condition.type == condition_type else condition for condition in conditions or ()
    )


def find_condition(conditions: Sequence[Condition] | None, condition_type: str) -> Condition | None:
    return next(
        (condition for condition in conditions or () if condition.type == condition_type), None
    )


def incident_conditions(status: IncidentStatus, *, now: datetime) -> tuple[Condition, ...]:
    """`Resolved` (True once verified or closed by hand) and `Escalated` (people must act)."""
    reason = (status.phase or Phase.TRIAGING).value
    message = status.message or ""
    conditions = status.conditions
    for kind, holds in (
        ("Resolved", status.phase is Phase.RESOLVED),
        ("Escalated", status.phase is Phase.ESCALATED),
    ):
        conditions = set_condition(
            conditions,
            condition_type=kind,
            status=ConditionStatus.TRUE if holds else ConditionStatus.FALSE,
            reason=reason,
            message=message,
            now=now,
        )
    if status.gitops is not None:
        # Argo CD or Flux applies the target: whether it was suspended, refused or proceeded.
        conditions = set_condition(
            conditions,
            condition_type="GitOpsManaged",
            status=ConditionStatus.TRUE,
            reason=status.gitops.state.value,
            message=status.gitops.message or "",
            now=now,
        )
    return tuple(conditions or ())
