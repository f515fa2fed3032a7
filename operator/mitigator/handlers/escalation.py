"""Escalation notices: the policy's levels (on-call 15m, lead 1h, VP 2h, ...) counted from
detection, and the first level at once when the incident is Escalated; and, once it is
Resolved, a resolved message to every level that was told. Runs apart from the mitigation
tick and writes only status.escalation, so a slow or failing webhook never delays a
mitigation. Failed deliveries are retried with exponential backoff (domain.escalation).

Webhook URLs and keys are secrets: they are read from the Secrets the policy names (in its
own namespace) at each attempt, registered for redaction, checked against the operator's
allowed hosts, and never written to status, Events or logs: those name the receiver only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf

from mitigator.domain.escalation import (
    MAX_ATTEMPTS,
    due_escalations,
    resolve_due,
    resolve_pending,
    settled_levels,
)
from mitigator.handlers.incidents import add_incident_timer
from mitigator.handlers.indexes import policies_in
from mitigator.handlers.leadership import leading
from mitigator.handlers.notices import About, attempt
from mitigator.handlers.world import Cluster
from mitigator.models import EscalationStatus, IncidentStatus, Phase
from mitigator.settings import OperatorSettings


def needs_notice(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    """Unresolved incidents (levels may fall due), and resolved ones with a level that was
    told and has not heard of the resolution yet. A drill (`mitigator drill`) rehearses the
    plan: it pages nobody."""
    if (spec.get("source") or {}).get("type") == "drill":
        return False
    if not status.get("detectedAt"):
        return False
    phase = Phase.of(status.get("phase"))
    if not phase.is_terminal:
        return True
    if phase is not Phase.RESOLVED:
        return False
    escalation = status.get("escalation") or {}
    if escalation.get("resolvedNoticesDone"):
        return False
    levels = escalation.get("levels") or []
    return any(
        notice.get("delivered")
        and not notice.get("resolvedNotified")
        and (notice.get("resolveAttempts") or 0) < MAX_ATTEMPTS
        for notice in levels
    )


def escalate(
    *,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    body: kopf.Body,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **kwargs: Any,
) -> None:
    if not leading(memo):
        return  # only the Lease holder notifies
    incident = IncidentStatus.model_validate(dict(status))
    if incident.detected_at is None or not incident.policy:
        return
    policy = next(
        (
            indexed.candidate.spec
            for indexed in policies_in(kwargs, str(meta["namespace"]))
            if indexed.candidate.name == incident.policy
        ),
        None,
    )
    if policy is None or not policy.escalation:
        if incident.phase is Phase.RESOLVED and incident.escalation is not None:
            # Nobody left to tell (the policy is gone): stop looking.
            done = incident.escalation.model_copy(update={"resolved_notices_done": True})
            patch.status["escalation"] = done.to_api_dict()
        return
    cluster: Cluster = memo.cluster
    settings: OperatorSettings = memo.settings
    now = datetime.now(UTC)
    target = str(spec.get("target", {}).get("name"))
    context = {
        "namespace": str(meta["namespace"]),
        "incident": str(meta["name"]),
        "target": target,
        "phase": incident.phase.value if incident.phase else None,
    }
    about = About(body, meta, incident, target, cluster, settings, context)
    current: EscalationStatus | None = incident.escalation
    changed = False
    if incident.phase is Phase.RESOLVED:
        for level in resolve_due(policy.escalation, current, now=now):
            current = attempt("resolve", level, current, now=now, about=about)
            changed = True
        if current is not None and not resolve_pending(policy.escalation, current):
            current = current.model_copy(update={"resolved_notices_done": True})
            changed = True
    else:
        due = due_escalations(
            policy.escalation,
            detected_at=incident.detected_at,
            now=now,
            notified_levels=settled_levels(current, now=now),
            escalated=incident.phase is Phase.ESCALATED,
        )
        for level in due.due:
            current = attempt("trigger", level, current, now=now, about=about)
            changed = True
    if changed and current is not None:
        patch.status["escalation"] = current.to_api_dict()


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    add_incident_timer(
        registry,
        escalate,
        handler_id="escalate",
        interval=settings.escalation_tick_seconds,
        when=needs_notice,
    )
