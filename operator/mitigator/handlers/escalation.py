"""Escalation notices: the policy's levels (on-call 15m, lead 1h, VP 2h, ...) counted from
detection, and the first level at once when the incident is Escalated. Runs apart from the
mitigation tick and writes only status.escalation, so a slow or failing webhook never
delays a mitigation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf

from mitigator import failpoints
from mitigator.actions.webhook import post_webhook
from mitigator.domain.escalation import due_escalations, record_notification, settled_levels
from mitigator.handlers.incidents import add_incident_timer
from mitigator.handlers.indexes import policies_in
from mitigator.models import EscalationStatus, IncidentStatus, Phase
from mitigator.settings import OperatorSettings

MAX_ATTEMPTS = 5


def unresolved(status: kopf.Status, **_: Any) -> bool:
    return bool(status.get("detectedAt")) and not Phase.of(status.get("phase")).is_terminal


def _payload(meta: kopf.Meta, status: IncidentStatus, level: Any, target: str) -> dict[str, Any]:
    where = f"{meta['namespace']}/{meta['name']}"
    text = (
        f"[{status.severity or '?'}] Incident {where} on Deployment {target}: "
        f"{status.phase} - {status.message or ''} (escalation level {level.level}"
        f"{' ' + level.name if level.name else ''})"
    )
    return {
        "text": text,
        "incident": {"namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]},
        "target": target,
        "severity": status.severity,
        "phase": status.phase,
        "message": status.message,
        "level": level.level,
        "levelName": level.name,
        "detectedAt": status.detected_at.isoformat() if status.detected_at else None,
    }


def escalate(
    *,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    body: kopf.Body,
    patch: kopf.Patch,
    logger: kopf.Logger,
    **kwargs: Any,
) -> None:
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
        return
    now = datetime.now(UTC)
    current: EscalationStatus | None = incident.escalation
    due = due_escalations(
        policy.escalation,
        detected_at=incident.detected_at,
        now=now,
        notified_levels=settled_levels(current, max_attempts=MAX_ATTEMPTS),
        escalated=incident.phase is Phase.ESCALATED,
    )
    if not due.due:
        return
    for level in due.due:
        payload = _payload(meta, incident, level, str(spec.get("target", {}).get("name")))
        delivery = post_webhook(level.webhook, payload) if level.webhook else None
        if delivery and delivery.delivered:
            failpoints.crash_if_armed(failpoints.DURING_ESCALATION_DELIVERY)  # crash tests
        current = record_notification(
            current,
            level,
            now=now,
            delivered=delivery.delivered if delivery else True,
            error=delivery.error if delivery else None,
        )
        outcome = (
            "no webhook"
            if delivery is None
            else "delivered"
            if delivery.delivered
            else f"failed: {delivery.error}"
        )
        kopf.event(
            body,
            type="Warning" if delivery and not delivery.delivered else "Normal",
            reason="Escalation",
            message=f"level {level.level} ({level.name or 'unnamed'}) notified: {outcome}",
        )
        logger.info("escalation level %s: %s", level.level, outcome)
    assert current is not None
    patch.status["escalation"] = current.to_api_dict()


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    add_incident_timer(
        registry,
        escalate,
        handler_id="escalate",
        interval=settings.escalation_tick_seconds,
        when=unresolved,
    )
