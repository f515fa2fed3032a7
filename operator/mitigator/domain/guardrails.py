"""Limits the operator respects before it acts. Each check returns why it must not act, or
None when it may."""

import fnmatch
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from mitigator.models import ActionType, ScaleAction, format_duration
from mitigator.models.evidence import AppliedRecord

# The control plane's own namespaces are never acted in, whatever a policy says.
ALWAYS_PROTECTED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
ALWAYS_PROTECTED = ALWAYS_PROTECTED_NAMESPACES

# Records on the target whose key ends so are reverts (see mitigator.actions.executor), which
# undo a mitigation rather than make one: they count neither for cooldowns nor hourly caps.
_REVERT_KEY_SUFFIX = "/revert"

_HOUR = timedelta(hours=1)


def check_protected_namespace(
    namespace: str, *, protected_namespaces: Iterable[str] = ()
) -> str | None:
    if namespace in ALWAYS_PROTECTED_NAMESPACES:
        return f"namespace {namespace} is a control-plane namespace and is always protected"
    # Operator-wide settings may use globs ("team-*"); a policy's list holds plain names.
    if any(fnmatch.fnmatchcase(namespace, pattern) for pattern in protected_namespaces):
        return f"namespace {namespace} is protected (guardrails.protectedNamespaces)"
    return None


def check_cooldown(
    *, last_mitigation_at: datetime | None, cooldown: timedelta, now: datetime
) -> str | None:
    """Refuses a new mitigation of a target mitigated less than `cooldown` ago."""
    if last_mitigation_at is None:
        return None
    # A timestamp from the future (clock skew) counts as "just now".
    elapsed = max(now - last_mitigation_at, timedelta())
    if elapsed >= cooldown:
        return None
    return (
        f"the target was mitigated {format_duration(elapsed)} ago and the cooldown is "
        f"{format_duration(cooldown)}; next mitigation allowed at "
        f"{(last_mitigation_at + cooldown).isoformat()}"
    )


def check_action_rate(
    action_times: Iterable[datetime], *, max_actions_per_hour: int, now: datetime
) -> str | None:
    """Refuses one more action when `max_actions_per_hour` were applied in the last hour."""
    recent = sum(1 for applied_at in action_times if applied_at > now - _HOUR)
    if recent < max_actions_per_hour:
        return None
    return (
        f"{recent} actions were applied in the last hour and the limit is "
        f"{max_actions_per_hour} (guardrails.maxActionsPerHour)"
    )


def cooldown_refusal(
    applied: Sequence[AppliedRecord], *, incident_uid: str, cooldown: timedelta, now: datetime
) -> str | None:
    """`check_cooldown` over the action records on the target: the last mitigation by another
    incident counts (this incident's own earlier steps are its ladder, not a new attempt)."""
    others = [
        record.at
        for record in applied
        if record.at is not None
        and not record.key.startswith(f"{incident_uid}/")
        and not record.key.endswith(_REVERT_KEY_SUFFIX)
    ]
    return check_cooldown(last_mitigation_at=max(others, default=None), cooldown=cooldown, now=now)


def hourly_cap_refusal(
    applied: Sequence[AppliedRecord], *, limit: int, now: datetime
) -> str | None:
    """`check_action_rate` over the action records on the target (reverts not counted)."""
    return check_action_rate(
        (
            record.at
            for record in applied
            if record.at is not None and not record.key.endswith(_REVERT_KEY_SUFFIX)
        ),
        max_actions_per_hour=limit,
        now=now,
    )


def check_concurrency(other_active_mitigations: int, *, max_concurrent: int) -> str | None:
    """Refuses to start a mitigation when `max_concurrent` other incidents are already being
    mitigated (count the others, not the incident asking)."""
    if other_active_mitigations < max_concurrent:
        return None
    return (
        f"{other_active_mitigations} other incidents are being mitigated and the limit is "
        f"{max_concurrent} (guardrails.maxConcurrentMitigations)"
    )


def check_approval(
    action_type: ActionType, *, require_approval_for: Collection[ActionType], approved: bool
) -> str | None:
    """Holds back an action type the policy reserves for people until spec.approved is set."""
    if action_type not in require_approval_for or approved:
        return None
    return f"{action_type} needs approval: set spec.approved: true on the Incident"


@dataclass(frozen=True, kw_only=True)
class ReplicaCap:
    """The replica count to set, what was asked for, and whether a cap cut it down."""

    replicas: int
    requested: int
    limit: int
    capped: bool


def cap_replicas(requested: int, maximum: int) -> ReplicaCap:
    if requested < 0:
        raise ValueError(f"cannot ask for {requested} replicas")
    replicas = min(requested, maximum)
    return ReplicaCap(
        replicas=replicas, requested=requested, limit=maximum, capped=replicas < requested
    )


def scale_target(current_replicas: int, scale: ScaleAction, *, max_replicas: int) -> ReplicaCap:
    """The replicas a scale step sets, under both the step's `max` and the policy's
    guardrails.maxReplicas.

    An increment never scales down: if the target already runs at or above the cap, it keeps
    its replicas (and the result says it was capped). An absolute `replicas` may scale down,
    as the guide does to relieve exhausted resources.
    """
    limit = max_replicas if scale.max_replicas is None else min(scale.max_replicas, max_replicas)
    if scale.replicas is not None:
        return cap_replicas(scale.replicas, limit)
    increment = scale.increment or 0
    requested = current_replicas + increment
    capped = cap_replicas(requested, limit)
    if capped.replicas < current_replicas:
        return ReplicaCap(replicas=current_replicas, requested=requested, limit=limit, capped=True)
    return capped
