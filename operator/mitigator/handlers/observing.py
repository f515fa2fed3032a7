"""What a tick did, told to the people running the operator: one INFO line per phase change,
per action that reached a final state (with its before and after), per verification result;
and the operator's own metrics for the same facts. Every line names the namespace, incident,
target, phase and (for actions) the action id."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import kopf

from mitigator import API_GROUP, API_VERSION, INCIDENT_PLURAL
from mitigator.domain import Event
from mitigator.models import ActionRecord, ActionState, IncidentStatus, Phase, TimelineEvent
from mitigator.observability import metrics
from mitigator.observability.logs import get_logger

log = get_logger("mitigator.incidents")

_SUMMARY_LIMIT = 300
_VERIFICATION_RESULTS: dict[str, str] = {
    TimelineEvent.VERIFIED.value: "passed",
    TimelineEvent.VERIFICATION_FAILED.value: "failed",
}


def _summary(value: Any) -> str | None:
    if value is None:
        return None
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= _SUMMARY_LIMIT else text[: _SUMMARY_LIMIT - 3] + "..."


def _settled(old: Sequence[ActionRecord], new: Sequence[ActionRecord]) -> list[ActionRecord]:
    """Actions whose state changed in this tick to a final one (not Pending)."""
    before = {record.id: record.state for record in old}
    return [
        record
        for record in new
        if record.state is not ActionState.PENDING and before.get(record.id) != record.state
    ]


def observe_tick(
    *,
    namespace: str,
    incident: str,
    target: str,
    old: IncidentStatus,
    new: IncidentStatus,
    events: Sequence[Event],
) -> None:
    """Log and count what changed between `old` and `new`."""
    context = {
        "namespace": namespace,
        "incident": incident,
        "target": target,
        "phase": new.phase.value if new.phase else None,
        "severity": new.severity.value if new.severity else None,
    }
    for record in _settled(old.actions or (), new.actions or ()):
        metrics.ACTIONS.labels(record.type.value, record.state.value).inc()
        log.info(
            "action " + record.state.value.lower(),
            **context,
            action_id=record.id,
            action=record.type.value,
            result=record.state.value,
            detail=record.message,
            before=_summary(record.before),
            after=_summary(record.after),
        )
    for event in events:
        result = _VERIFICATION_RESULTS.get(event.reason)
        if result is not None:
            metrics.VERIFICATIONS.labels(result).inc()
            log.info("verification " + result, **context, result=result, detail=event.message)
    if new.phase is not None and new.phase != old.phase:
        metrics.TRANSITIONS.labels(new.phase.value).inc()
        log.info(
            "phase changed",
            **context,
            previous_phase=old.phase.value if old.phase else None,
            detail=new.message,
        )
    if new.detected_at is not None:
        if old.mitigated_at is None and new.mitigated_at is not None:
            metrics.TIME_TO_FIRST_ACTION.observe(
                (new.mitigated_at - new.detected_at).total_seconds()
            )
        if old.resolved_at is None and new.resolved_at is not None and new.phase is Phase.RESOLVED:
            metrics.TIME_TO_RESOLUTION.observe((new.resolved_at - new.detected_at).total_seconds())


async def incident_seen(event: kopf.RawEvent, uid: str, status: kopf.Status, **_: Any) -> None:
    """Keep `mitigator_incidents{phase,severity}` current from the watch. (Async: a sync
    handler takes a turn in the ticks' thread pool for every event of every Incident.)"""
    if event.get("type") == "DELETED":
        metrics.INCIDENTS.forget(uid)
        return
    metrics.INCIDENTS.observe(uid, phase=status.get("phase"), severity=status.get("severity"))


def register(registry: kopf.OperatorRegistry) -> None:
    kopf.on.event(API_GROUP, API_VERSION, INCIDENT_PLURAL, id="observe", registry=registry)(
        incident_seen
    )
