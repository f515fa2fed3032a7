"""Incident handlers: validate the spec once, call the pure lifecycle, write its result
through kopf's patch, post its events. A timer drives progress; no handler sleeps."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import kopf
from pydantic import ValidationError

from mitigator import failpoints
from mitigator.domain import Advance, IncidentView, advance
from mitigator.domain.lifecycle import summarize
from mitigator.handlers.departures import Departures, add_incident_timer
from mitigator.handlers.escalation import settled_by_the_tick
from mitigator.handlers.freshness import LOST_AFTER_SECONDS, Freshness, freshness
from mitigator.handlers.leadership import NotActing, leading
from mitigator.handlers.observing import observe_tick
from mitigator.handlers.patching import merge_patch
from mitigator.handlers.world import Cluster
from mitigator.models import (
    IncidentSpec,
    IncidentStatus,
    Phase,
    TimelineEvent,
    describe_validation_error,
)
from mitigator.observability.metrics import TICK_DURATION
from mitigator.settings import OperatorSettings


def needs_tick(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    phase = Phase.of(status.get("phase"))
    # An escalated incident waits for a person; it only moves again when they resolve it.
    return phase.advances_by_itself or (phase is Phase.ESCALATED and bool(spec.get("resolve")))


def _post_events(result: Advance, body: kopf.Body, target: dict[str, Any]) -> None:
    """One Event per object per tick, summing up the tick's notes (each Event is a write;
    the status timeline is the full record)."""
    on_incident = summarize(result.events)
    if on_incident is not None:
        kopf.event(
            body, type=on_incident.type, reason=on_incident.reason, message=on_incident.message
        )
    on_target = summarize([event for event in result.events if event.on_target])
    if on_target is not None:
        kopf.event(
            kopf.Body(cast(kopf.RawBody, target)),
            type=on_target.type,
            reason=on_target.reason,
            message=on_target.message,
        )


def _crash_points(view: IncidentView, result: Advance) -> None:
    """Crash tests: die where this tick stands, before its status is written."""
    reasons = {event.reason for event in result.events}
    if TimelineEvent.ACTION_APPLIED in reasons:
        failpoints.crash_if_armed(failpoints.AFTER_ACTION_APPLIED)
    if TimelineEvent.REVERTED in reasons:
        failpoints.crash_if_armed(failpoints.DURING_REVERT)
    if view.status.phase is Phase.VERIFYING:
        window = view.status.verification and view.status.verification.window_started_at
        failpoints.crash_if_armed(
            failpoints.DURING_VERIFICATION if window else failpoints.DURING_ROLLOUT_WAIT
        )


def tick(
    *,
    spec: kopf.Spec,
    status: kopf.Status,
    body: kopf.Body,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **kwargs: Any,
) -> None:
    if not leading(memo):
        return  # a standby: the Lease holder moves incidents
    cluster: Cluster = memo.cluster
    if not cluster.deployments.synced:
        # Policy choice and the target's labels read the Deployment cache: never a half-listed
        # one. The next tick tries again: only at a start, for a second or two. (Not kopf's
        # TemporaryError, which logs an ERROR line per Incident each time.)
        return
    try:
        incident_spec = IncidentSpec.model_validate(dict(spec))
    except ValidationError as exc:
        # The CRD schema refuses most mistakes; what is left (a rule only Python can check)
        # is recorded once, and the incident stops here rather than crash-looping.
        reason = describe_validation_error(exc)
        patch.status["phase"] = Phase.FAILED.value
        patch.status["message"] = f"invalid spec: {reason}"
        patch.status["settled"] = True  # Failed: nothing more is owed (watch_selection.py)
        raise kopf.PermanentError(f"invalid spec: {reason}") from exc
    old_status = dict(status)
    # The timer sees the body of the latest watch event; if our previous write has not
    # arrived yet, this tick would work from a stale status. Skip it; the next one is fresh,
    # unless the store lost the write (freshness.py). kopf's memo here is per object.
    stored = int(old_status.get("sequence", 0))
    verdict = freshness(memo, stored=stored, now=time.monotonic())
    if verdict is Freshness.BEHIND:
        return
    if verdict is Freshness.LOST:
        logger.warning(
            "incident %s/%s: its stored status (write %d) stayed behind this process's last "
            "write for %.0fs: the store lost writes (etcd restored from a backup?); going on "
            "from the stored status",
            meta["namespace"],
            meta["name"],
            stored,
            LOST_AFTER_SECONDS,
        )
    view = IncidentView(
        namespace=str(meta["namespace"]),
        name=str(meta["name"]),
        uid=str(meta["uid"]),
        generation=int(meta.get("generation", 0)),
        spec=incident_spec,
        status=IncidentStatus.model_validate(old_status),
    )
    settings: OperatorSettings = memo.settings
    started = time.monotonic()
    try:
        result = advance(
            view,
            world=cluster.world(kwargs),
            now=datetime.now(UTC),
            protected_namespaces=settings.protected_namespaces,
            verification_refresh=timedelta(seconds=settings.verification_refresh_seconds),
        )
    except NotActing:
        # Lost the Lease mid-tick: write nothing; the new leader reads the target's records.
        logger.warning("incident %s/%s: not the leader any more; tick dropped", *_where(view))
        return
    _crash_points(view, result)
    new_status = result.status.to_api_dict()
    if not new_status.get("settled") and settled_by_the_tick(
        spec, new_status, meta.get("namespace"), kwargs
    ):
        # Made final with no resolved notice owed: said in this same write, and the watch
        # lets the Incident go (watch_selection.py). Otherwise escalation.py says it.
        new_status["settled"] = True
    changes = merge_patch(old_status, {**new_status, "sequence": old_status.get("sequence", 0)})
    if changes:
        sequence = int(old_status.get("sequence", 0)) + 1
        changes["sequence"] = sequence
        memo["sequence"] = sequence
        patch.status.update(changes)
    target = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "namespace": view.namespace,
            "name": incident_spec.target.name,
            "uid": result.target_uid or "",
        },
    }
    _post_events(result, body, target)
    observe_tick(
        namespace=view.namespace,
        incident=view.name,
        target=incident_spec.target.name,
        old=view.status,
        new=result.status,
        events=result.events,
    )
    TICK_DURATION.observe(time.monotonic() - started)


def _where(view: IncidentView) -> tuple[str, str]:
    return view.namespace, view.name


def register(
    registry: kopf.OperatorRegistry, settings: OperatorSettings, *, departures: Departures
) -> None:
    add_incident_timer(
        registry,
        tick,
        handler_id="tick",
        interval=settings.tick_seconds,
        when=needs_tick,
        departures=departures,
    )
