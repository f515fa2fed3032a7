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

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf

from mitigator import failpoints
from mitigator.actions.webhook import (
    PAGERDUTY_EVENTS_URL,
    Delivery,
    Notice,
    NoticeKind,
    pagerduty_payload,
    post_webhook,
    slack_payload,
)
from mitigator.domain.ceilings import webhook_host_refusal
from mitigator.domain.escalation import (
    MAX_ATTEMPTS,
    due_escalations,
    record_notification,
    record_resolve,
    resolve_due,
    resolve_pending,
    settled_levels,
)
from mitigator.handlers.incidents import add_incident_timer
from mitigator.handlers.indexes import policies_in
from mitigator.handlers.leadership import leading
from mitigator.handlers.world import Cluster
from mitigator.k8s import ApiError, NotFound
from mitigator.models import (
    EscalationLevel,
    EscalationStatus,
    IncidentStatus,
    Phase,
    ReceiverFormat,
    SecretKeyRef,
)
from mitigator.observability.logs import get_logger, register_secret, register_secret_url
from mitigator.observability.metrics import ESCALATION_DELIVERIES
from mitigator.settings import OperatorSettings

log = get_logger("mitigator.escalation")


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


@dataclass(frozen=True)
class _Destination:
    url: str | None = None
    routing_key: str | None = None
    refusal: str | None = None  # why nothing is sent (never quotes a secret)
    result: str = "refused"  # the deliveries counter's result when nothing is sent


class _SecretUnreadable(Exception):
    """The API server refused or failed to give a receiver's Secret (names it, never a value)."""


def _secret(cluster: Cluster, namespace: str, ref: SecretKeyRef, *, url: bool = False) -> str:
    try:
        value = cluster.kube.read_secret_value(namespace, ref.name, ref.key)
    except ApiError as exc:
        # 403 is the usual one: no overlay lets the operator read Secrets; each team grants
        # `get` on the names its policies use (config/policy-secrets).
        hint = " (forbidden: grant the operator `get` on it, config/policy-secrets)"
        raise _SecretUnreadable(
            f"the receiver's Secret {namespace}/{ref.name} cannot be read: HTTP {exc.status}"
            + (hint if exc.status == 403 else "")
        ) from exc
    if url:
        register_secret_url(value)
    else:
        register_secret(value)
    return value


def _destination(
    level: EscalationLevel, *, namespace: str, cluster: Cluster, settings: OperatorSettings
) -> _Destination:
    receiver = level.receiver
    try:
        if receiver is None:
            url = level.webhook
            key = None
        else:
            url = (
                _secret(cluster, namespace, receiver.url_secret_ref, url=True)
                if receiver.url_secret_ref
                else PAGERDUTY_EVENTS_URL
            )
            key = (
                _secret(cluster, namespace, receiver.routing_key_secret_ref)
                if receiver.routing_key_secret_ref
                else None
            )
    except NotFound as exc:
        return _Destination(refusal=f"refused: {exc}")
    except _SecretUnreadable as exc:
        return _Destination(refusal=f"failed: {exc}", result="failed")
    if url is None:
        return _Destination()
    refusal = webhook_host_refusal(
        url, settings.ceilings(), field=f"receiver {level.receiver_name}"
    )
    if refusal is not None:
        return _Destination(refusal=f"refused: {refusal}")
    return _Destination(url=url, routing_key=key)


def _notice(
    kind: NoticeKind, meta: kopf.Meta, status: IncidentStatus, level: EscalationLevel, target: str
) -> Notice:
    return Notice(
        kind=kind,
        namespace=str(meta["namespace"]),
        incident=str(meta["name"]),
        uid=str(meta["uid"]),
        target=target,
        severity=status.severity.value if status.severity else None,
        phase=status.phase.value if status.phase else None,
        message=status.message,
        level=level.level,
        level_name=level.name,
        detected_at=status.detected_at.isoformat() if status.detected_at else None,
    )


def _send(notice: Notice, level: EscalationLevel, destination: _Destination) -> Delivery:
    assert destination.url is not None
    if level.receiver is not None and level.receiver.format is ReceiverFormat.PAGERDUTY:
        payload = pagerduty_payload(notice, routing_key=destination.routing_key or "")
    else:
        payload = slack_payload(notice)
    return post_webhook(destination.url, payload)


def _notify(
    kind: NoticeKind,
    level: EscalationLevel,
    *,
    meta: kopf.Meta,
    incident: IncidentStatus,
    target: str,
    cluster: Cluster,
    settings: OperatorSettings,
) -> tuple[Delivery | None, str]:
    """One attempt: (delivery or None when there is no destination, outcome words)."""
    destination = _destination(
        level, namespace=str(meta["namespace"]), cluster=cluster, settings=settings
    )
    fmt = level.receiver.format.value if level.receiver else "slack"
    if destination.refusal is not None:
        ESCALATION_DELIVERIES.labels(kind, fmt, destination.result).inc()
        return Delivery(False, destination.refusal), destination.refusal
    if destination.url is None:
        return None, "no webhook"
    delivery = _send(_notice(kind, meta, incident, level, target), level, destination)
    ESCALATION_DELIVERIES.labels(kind, fmt, "delivered" if delivery.delivered else "failed").inc()
    return delivery, "delivered" if delivery.delivered else f"failed: {delivery.error}"


def _report(
    body: kopf.Body,
    *,
    kind: NoticeKind,
    level: EscalationLevel,
    delivery: Delivery | None,
    outcome: str,
    context: dict[str, Any],
) -> None:
    via = f" via {level.receiver_name}" if level.receiver_name else ""
    what = "told of the resolution" if kind == "resolve" else "notified"
    kopf.event(
        body,
        type="Warning" if delivery and not delivery.delivered else "Normal",
        reason="Escalation" if kind == "trigger" else "EscalationResolved",
        message=f"level {level.level} ({level.name or 'unnamed'}) {what}{via}: {outcome}",
    )
    log.info(
        "escalation " + ("resolved notice" if kind == "resolve" else "notice"),
        **context,
        level=level.level,
        level_name=level.name,
        receiver=level.receiver_name,
        result="recorded" if delivery is None else "delivered" if delivery.delivered else "failed",
        detail=outcome,
    )


@dataclass(frozen=True)
class _About:
    """The incident a notice is about, and where it is sent from and reported."""

    body: kopf.Body
    meta: kopf.Meta
    incident: IncidentStatus
    target: str
    cluster: Cluster
    settings: OperatorSettings
    context: dict[str, Any]


def _attempt(
    kind: NoticeKind,
    level: EscalationLevel,
    current: EscalationStatus | None,
    *,
    now: datetime,
    about: _About,
) -> EscalationStatus:
    """One delivery attempt for one level: sent, then recorded in status, an Event, a log line."""
    delivery, outcome = _notify(
        kind,
        level,
        meta=about.meta,
        incident=about.incident,
        target=about.target,
        cluster=about.cluster,
        settings=about.settings,
    )
    if kind == "trigger" and delivery and delivery.delivered:
        failpoints.crash_if_armed(failpoints.DURING_ESCALATION_DELIVERY)  # crash tests
    delivered = delivery.delivered if delivery else True
    error = delivery.error if delivery else None
    if kind == "resolve":
        assert current is not None  # a resolve notice follows a delivered trigger
        recorded = record_resolve(current, level, now=now, delivered=delivered, error=error)
    else:
        recorded = record_notification(current, level, now=now, delivered=delivered, error=error)
    _report(
        about.body,
        kind=kind,
        level=level,
        delivery=delivery,
        outcome=outcome,
        context=about.context,
    )
    return recorded


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
    about = _About(body, meta, incident, target, cluster, settings, context)
    current: EscalationStatus | None = incident.escalation
    changed = False
    if incident.phase is Phase.RESOLVED:
        for level in resolve_due(policy.escalation, current, now=now):
            current = _attempt("resolve", level, current, now=now, about=about)
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
            current = _attempt("trigger", level, current, now=now, about=about)
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
