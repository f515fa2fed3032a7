"""One escalation notice, sent: the receiver's address read from the policy's Secrets (never
logged or recorded), checked against the operator's ceilings, the Slack-compatible or
PagerDuty payload posted, and the attempt recorded in status, an Event and a log line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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
from mitigator.domain.escalation import record_notification, record_resolve
from mitigator.handlers.world import Cluster
from mitigator.k8s import ApiError, NotFound
from mitigator.models import (
    EscalationLevel,
    EscalationStatus,
    IncidentStatus,
    ReceiverFormat,
    SecretKeyRef,
)
from mitigator.observability.logs import get_logger, register_secret, register_secret_url
from mitigator.observability.metrics import ESCALATION_DELIVERIES
from mitigator.settings import OperatorSettings

log = get_logger("mitigator.escalation")


@dataclass(frozen=True)
class About:
    """The incident a notice is about, and where it is sent from and reported."""

    body: kopf.Body
    meta: kopf.Meta
    incident: IncidentStatus
    target: str
    cluster: Cluster
    settings: OperatorSettings
    context: dict[str, Any]


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


def _notify(kind: NoticeKind, level: EscalationLevel, about: About) -> tuple[Delivery | None, str]:
    """One attempt: (delivery or None when there is no destination, outcome words)."""
    destination = _destination(
        level,
        namespace=str(about.meta["namespace"]),
        cluster=about.cluster,
        settings=about.settings,
    )
    fmt = level.receiver.format.value if level.receiver else "slack"
    if destination.refusal is not None:
        ESCALATION_DELIVERIES.labels(kind, fmt, destination.result).inc()
        return Delivery(False, destination.refusal), destination.refusal
    if destination.url is None:
        return None, "no webhook"
    notice = _notice(kind, about.meta, about.incident, level, about.target)
    delivery = _send(notice, level, destination)
    ESCALATION_DELIVERIES.labels(kind, fmt, "delivered" if delivery.delivered else "failed").inc()
    return delivery, "delivered" if delivery.delivered else f"failed: {delivery.error}"


def _report(
    kind: NoticeKind,
    level: EscalationLevel,
    *,
    delivery: Delivery | None,
    outcome: str,
    about: About,
) -> None:
    via = f" via {level.receiver_name}" if level.receiver_name else ""
    what = "told of the resolution" if kind == "resolve" else "notified"
    kopf.event(
        about.body,
        type="Warning" if delivery and not delivery.delivered else "Normal",
        reason="Escalation" if kind == "trigger" else "EscalationResolved",
        message=f"level {level.level} ({level.name or 'unnamed'}) {what}{via}: {outcome}",
    )
    log.info(
        "escalation " + ("resolved notice" if kind == "resolve" else "notice"),
        **about.context,
        level=level.level,
        level_name=level.name,
        receiver=level.receiver_name,
        result="recorded" if delivery is None else "delivered" if delivery.delivered else "failed",
        detail=outcome,
    )


def attempt(
    kind: NoticeKind,
    level: EscalationLevel,
    current: EscalationStatus | None,
    *,
    now: datetime,
    about: About,
) -> EscalationStatus:
    """One delivery attempt for one level: sent, then recorded in status, an Event, a log line."""
    delivery, outcome = _notify(kind, level, about)
    if kind == "trigger" and delivery and delivery.delivered:
        failpoints.crash_if_armed(failpoints.DURING_ESCALATION_DELIVERY)  # crash tests
    delivered = delivery.delivered if delivery else True
    error = delivery.error if delivery else None
    if kind == "resolve":
        assert current is not None  # a resolve notice follows a delivered trigger
        recorded = record_resolve(current, level, now=now, delivered=delivered, error=error)
    else:
        recorded = record_notification(current, level, now=now, delivered=delivered, error=error)
    _report(kind, level, delivery=delivery, outcome=outcome, about=about)
    return recorded
