"""Limits the operator respects before it acts. Each check returns why it must not act, or
None when it may."""

import fnmatch
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta

from mitigator.models import ActionType, format_duration
from mitigator.models.evidence import AppliedRecord

# The control plane's own namespaces are never acted in, whatever a policy says.
ALWAYS_PROTECTED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})

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


def cooldown_refusal(
    applied: Sequence[AppliedRecord], *, incident_uid: str, cooldown: timedelta, now: datetime
) -> str | None:
    """Refuses a new mitigation of a target that another incident mitigated less than
    `cooldown` ago (this incident's own earlier steps are its ladder, not a new attempt;
    reverts undo a mitigation rather than make one)."""
    others = [
        record.at
        for record in applied
        if record.at is not None and not record.made_by(incident_uid) and not record.is_revert
    ]
    last = max(others, default=None)
    if last is None:
        return None
    # A timestamp from the future (clock skew) counts as "just now".
    elapsed = max(now - last, timedelta())
    if elapsed >= cooldown:
        return None
    return (
        f"the target was mitigated {format_duration(elapsed)} ago and the cooldown is "
        f"{format_duration(cooldown)}; next mitigation allowed at {(last + cooldown).isoformat()}"
    )


def hourly_cap_refusal(
    applied: Sequence[AppliedRecord], *, limit: int, now: datetime
) -> str | None:
    """Refuses one more action when `limit` were applied to the target in the last hour
    (reverts not counted)."""
    recent = sum(
        1
        for record in applied
        if record.at is not None and not record.is_revert and record.at > now - _HOUR
    )
    if recent < limit:
        return None
    return (
        f"{recent} actions were applied in the last hour and the limit is "
        f"{limit} (guardrails.maxActionsPerHour)"
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
