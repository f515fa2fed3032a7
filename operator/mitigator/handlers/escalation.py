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

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from mitigator import API_GROUP, API_VERSION, POLICY_PLURAL
from mitigator.domain.escalation import (
    MAX_ATTEMPTS,
    due_escalations,
    resolve_due,
    resolve_pending,
    settled_levels,
)
from mitigator.handlers.departures import Departures, add_incident_timer
from mitigator.handlers.indexes import policies_in
from mitigator.handlers.leadership import leading
from mitigator.handlers.notices import About, attempt
from mitigator.handlers.world import Cluster
from mitigator.k8s import ApiError, NotFound
from mitigator.models import EscalationLevel, EscalationStatus, IncidentStatus, Phase
from mitigator.settings import OperatorSettings


def needs_notice(
    spec: kopf.Spec, status: kopf.Status, namespace: str | None, **kwargs: Any
) -> bool:
    """Unresolved incidents whose policy has escalation levels (they may fall due), and
    resolved ones with a level that was told and has not heard of the resolution yet (also
    when the policy is gone: the handler then records that nobody is left to tell). A drill
    (`mitigator drill`) rehearses the plan: it pages nobody.

    kopf evaluates this on each event of the Incident, with its indexes: a timer every few
    seconds for each of 1,000 Incidents whose policy has no levels was work for nothing. An
    Incident whose policy gains levels later is sent an event by `policy_levels_changed`."""
    if _pages_nobody(spec, status):
        return False
    if not Phase.of(status.get("phase")).is_terminal:
        return bool(_levels(kwargs, str(namespace), status.get("policy")))
    return _resolved_notice_owed(status) or _left_to_settle(status, namespace, kwargs)


def owes_nothing(spec: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """A final Incident with no resolved notice to send: no handler of ours will run for it
    again (needs_tick and needs_notice refuse it), so its status is written `settled`
    (watch_selection.py). Reads no index: the status says it all once final."""
    if not Phase.of(status.get("phase")).is_terminal:
        return False
    return _pages_nobody(spec, status) or not _resolved_notice_owed(status)


def settled_by_the_tick(
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    namespace: str | None,
    handler_kwargs: Mapping[str, Any],
) -> bool:
    """Whether the tick's write that makes the Incident final says `settled` too. Not for a
    Resolved one whose policy has escalation levels: this timer runs beside the tick, from the
    same body, and a page it sends while the tick resolves would be left without its resolved
    notice once the Incident leaves the watch. That one is settled by this timer, which alone
    both pages and settles (`_left_to_settle`, `escalate`)."""
    if not owes_nothing(spec, status):
        return False
    if Phase.of(status.get("phase")) is not Phase.RESOLVED or _pages_nobody(spec, status):
        return True
    return not _levels(handler_kwargs, str(namespace), status.get("policy"))


def _left_to_settle(
    status: Mapping[str, Any], namespace: str | None, handler_kwargs: Mapping[str, Any]
) -> bool:
    """A Resolved Incident the tick left unsettled because its policy has escalation levels."""
    return (
        Phase.of(status.get("phase")) is Phase.RESOLVED
        and not status.get("settled")
        and bool(_levels(handler_kwargs, str(namespace), status.get("policy")))
    )


def _pages_nobody(spec: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    return (spec.get("source") or {}).get("type") == "drill" or not status.get("detectedAt")


def _resolved_notice_owed(status: Mapping[str, Any]) -> bool:
    """A Resolved Incident with a level that was told and not yet of the resolution."""
    if Phase.of(status.get("phase")) is not Phase.RESOLVED:
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


def _levels(
    handler_kwargs: Mapping[str, Any], namespace: str, policy: str | None
) -> list[EscalationLevel]:
    """The escalation levels of the (valid) policy named, as the index holds it; none when it
    is unknown, invalid or has none."""
    if not policy:
        return []
    for indexed in policies_in(handler_kwargs, namespace):
        if indexed.candidate.name == policy and indexed.candidate.spec is not None:
            return list(indexed.candidate.spec.escalation)
    return []


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
    levels = _levels(kwargs, str(meta["namespace"]), incident.policy)
    if not levels:
        if incident.phase is Phase.RESOLVED and incident.escalation is not None:
            # Nobody left to tell (the policy is gone): stop looking.
            done = incident.escalation.model_copy(update={"resolved_notices_done": True})
            patch.status["escalation"] = done.to_api_dict()
            patch.status["settled"] = True  # owed nothing more: leaves the watch
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
        for level in resolve_due(levels, current, now=now):
            current = attempt("resolve", level, current, now=now, about=about)
            changed = True
        if current is not None and not resolve_pending(levels, current):
            current = current.model_copy(update={"resolved_notices_done": True})
            changed = True
    else:
        due = due_escalations(
            levels,
            detected_at=incident.detected_at,
            now=now,
            notified_levels=settled_levels(current, now=now),
            escalated=incident.phase is Phase.ESCALATED,
        )
        for level in due.due:
            current = attempt("trigger", level, current, now=now, about=about)
            changed = True
        if changed:
            # The tick may have resolved and settled the Incident while this page went out
            # (both timers run at once, from the same body): un-settle it in this same write,
            # so that the watch brings it back and its resolved notice is sent.
            patch.status["settled"] = None
    if changed and current is not None:
        patch.status["escalation"] = current.to_api_dict()
        if incident.phase is Phase.RESOLVED and current.resolved_notices_done:
            # The same write: every notice sent or given up on, nothing more is owed.
            patch.status["settled"] = True
    elif (
        incident.phase is Phase.RESOLVED
        and not status.get("settled")
        and not resolve_pending(levels, current)
    ):
        # Resolved with nobody told (or all told already): the tick left the settling to
        # this timer (settled_by_the_tick); nothing more is owed.
        patch.status["settled"] = True


# Written on an Incident to make kopf look at it again (the policy's uid and generation).
POLICY_SEEN = f"{API_GROUP}/escalation-policy"


def policy_levels_changed(
    *,
    type: str | None,  # kopf names the event type so
    name: str,
    namespace: str | None,
    meta: kopf.Meta,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **kwargs: Any,
) -> None:
    """A policy that has escalation levels now and had none (or is new): its unsettled
    Incidents have no escalation timer (`needs_notice` refused them), and kopf asks the filter
    again only on an event of the Incident. An Escalated Incident, or one waiting, may have no
    event for hours: each is given one, an annotation (one write per Incident, when a policy
    gains levels; none at start-up, when every Incident is looked at anyway)."""
    if type == "DELETED":
        return
    has_levels = bool(_levels(kwargs, str(namespace), name))
    # kopf's memo here is per object: what this policy had at its last event.
    had_levels: bool | None = memo.get("escalation_levels")
    memo["escalation_levels"] = has_levels
    gained = has_levels and (had_levels is False or (had_levels is None and type == "ADDED"))
    if not gained or not leading(memo):
        return
    cluster: Cluster = memo.cluster
    seen = f"{meta.get('uid')}/{meta.get('generation')}"
    for incident in cluster.kube.list_incidents(str(namespace)):
        if not _waits_for(incident, policy=name):
            continue
        incident_name = str(incident["metadata"]["name"])
        try:
            cluster.kube.patch_incident(
                str(namespace),
                incident_name,
                {"metadata": {"annotations": {POLICY_SEEN: seen}}},
            )
        except NotFound:
            continue  # deleted meanwhile
        except ApiError as exc:
            # kopf does not retry event handlers: the Incident is escalated from its next
            # event on (its next status write, a person's edit).
            logger.warning(
                "policy %s gained escalation levels; Incident %s not nudged: %s",
                name,
                incident_name,
                exc,
            )


def _waits_for(incident: Mapping[str, Any], *, policy: str) -> bool:
    """Whether `needs_notice` would take this Incident up with levels on `policy`."""
    status = incident.get("status") or {}
    return (
        status.get("policy") == policy
        and bool(status.get("detectedAt"))
        and not Phase.of(status.get("phase")).is_terminal
        and ((incident.get("spec") or {}).get("source") or {}).get("type") != "drill"
    )


def register(
    registry: kopf.OperatorRegistry, settings: OperatorSettings, *, departures: Departures
) -> None:
    add_incident_timer(
        registry,
        escalate,
        handler_id="escalate",
        interval=settings.escalation_tick_seconds,
        when=needs_notice,
        departures=departures,
    )
    kopf.on.event(API_GROUP, API_VERSION, POLICY_PLURAL, id="escalation-levels", registry=registry)(
        policy_levels_changed
    )
