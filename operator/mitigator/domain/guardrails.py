"""Limits the operator respects before it acts. Each check returns why it must not act, or
None when it may."""

import fnmatch
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta

from mitigator.domain.selection import PolicyCandidate
from mitigator.models import ActionType, Guardrails, format_duration
from mitigator.models.evidence import Contender
from mitigator.models.execution import AppliedRecord

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


def admission(
    applied: Sequence[AppliedRecord],
    *,
    incident_uid: str,
    cooldown: timedelta,
    hourly_limit: int,
    now: datetime,
) -> str | None:
    """What the write itself asks, on the target's records as it read them: the cooldown,
    then the hourly cap."""
    return cooldown_refusal(
        applied, incident_uid=incident_uid, cooldown=cooldown, now=now
    ) or hourly_cap_refusal(applied, limit=hourly_limit, now=now)


def slot_refusal(
    me: Contender, others: Sequence[Contender], *, granted: Collection[str], limit: int
) -> str | None:
    """The concurrency limit, served in turns: an incident may start acting when fewer than
    `limit` incidents hold a slot (an action applied and not finished, or a slot just granted)
    and fewer than the free slots are waiting ahead of it (first detected, first served).
    Waiting incidents never count as acting, so they cannot lock each other out."""
    holders = [o for o in others if o.holds_claim or o.uid in granted]
    if me.holds_claim or me.uid in granted:
        return None
    if len(holders) >= limit:
        names = ", ".join(sorted(o.name for o in holders))
        return (
            f"{len(holders)} incidents are being mitigated ({names}) and the limit is {limit} "
            "(guardrails.maxConcurrentMitigations)"
        )
    ahead = [o for o in others if o.waiting and o not in holders and _turn(o) < _turn(me)]
    if len(holders) + len(ahead) >= limit:
        return (
            f"{len(ahead)} incidents detected earlier are waiting for the "
            f"{limit - len(holders)} free slot(s) (guardrails.maxConcurrentMitigations)"
        )
    return None


def _turn(contender: Contender) -> tuple[datetime, str]:
    return (contender.detected_at or datetime.max.replace(tzinfo=UTC), contender.name)


def check_approval(
    action_type: ActionType, *, require_approval_for: Collection[ActionType], approved: bool
) -> str | None:
    """Holds back an action type the policy reserves for people until spec.approved is set."""
    if action_type not in require_approval_for or approved:
        return None
    return f"{action_type} needs approval: set spec.approved: true on the Incident"


def target_wait(candidates: Sequence[PolicyCandidate], *, policy_ref: str | None) -> timedelta:
    """How long an Incident waits for a missing target: the named policy's targetWait, else
    the longest of the namespace's valid policies (a missing target has no labels to choose
    by), else the default."""
    waits = [
        c.spec.guardrails.target_wait
        for c in candidates
        if c.spec is not None and policy_ref in (None, c.name)
    ]
    return max(waits, default=Guardrails().target_wait)
