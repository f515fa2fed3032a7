"""From an Alertmanager alert group to Incidents: which Deployment each alert names, what the
Incident for a (group, namespace, Deployment) is called, what it holds, and how a resend or a
resolution changes it. Pure: the I/O lives in `mitigator.bridge.service`.

Identity. Alertmanager resends every group each group_interval (and after restarts, and from
every replica of an HA pair), so the Incident's name is derived from what identifies it:
``<deployment>-<16 hex of sha256(groupKey, namespace, deployment)>``, a DNS-1123 name of at
most 63 characters, with the full identity in the label ``mitigator.luminamind.io/alert-group``.

Episodes. A group key is forever: the same alert firing next week has the same groupKey.
Merging it into last week's Resolved Incident would hide it from the operator, which does not
act on a finished Incident. So an Incident is *closed* once Alertmanager reported the whole
group resolved (``spec.source.resolvedAt``) and the operator finished with it (phase Resolved
or Failed); a firing alert that is newer than what the closed Incident recorded opens the next
episode, ``<name>-2``, ``<name>-3``, ... (label ``mitigator.luminamind.io/alert-episode``).
Until then, resends, new alerts and resolutions all go to the same Incident.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from mitigator import API_GROUP, API_VERSION
from mitigator.bridge.payload import WebhookAlert, WebhookPayload
from mitigator.domain.classify import severity_hint_from_labels
from mitigator.models import (
    AlertRecord,
    AlertStatus,
    IncidentSource,
    IncidentSpec,
    Phase,
    SourceType,
    TargetRef,
    describe_validation_error,
)
from mitigator.models.common import DNS1123_LABEL_PATTERN, DNS1123_SUBDOMAIN_PATTERN

DEFAULT_TARGET_LABELS = ("deployment", "app", "app_kubernetes_io_name")
DEFAULT_NAMESPACE_LABEL = "namespace"

# spec.source.alerts holds at most this many alerts (the CRD's maxItems).
MAX_RECORDED_ALERTS = 100
MAX_TITLE_LENGTH = 256
MAX_EPISODE = 9999

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "mitigator-bridge"
LABEL_SOURCE = f"{API_GROUP}/source"
LABEL_GROUP = f"{API_GROUP}/alert-group"
LABEL_EPISODE = f"{API_GROUP}/alert-episode"
LABEL_ALERTNAME = f"{API_GROUP}/alertname"
ANNOTATION_ALERTMANAGER = f"{API_GROUP}/alertmanager-url"

# <prefix>-<16 hex>[-<episode up to 9999>] stays within 63 characters.
_NAME_PREFIX_LENGTH = 40
_NAME_HASH_LENGTH = 16
_GROUP_LABEL_LENGTH = 40
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_NAMESPACE = re.compile(DNS1123_LABEL_PATTERN)
_DEPLOYMENT = re.compile(DNS1123_SUBDOMAIN_PATTERN)
_TERMINAL_PHASES = frozenset(phase.value for phase in Phase if phase.is_terminal)
_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


class Reason(StrEnum):
    """Why an alert did not become (part of) an Incident: stable codes for bodies and metrics."""

    # Unmapped: the alert names no target. Answered with 200, counted, listed in the body.
    NO_NAMESPACE_LABEL = "no_namespace_label"
    NO_TARGET_LABEL = "no_target_label"
    # Rejected: the alert names a target the bridge refuses.
    INVALID_NAMESPACE = "invalid_namespace"
    INVALID_TARGET = "invalid_target"
    NAMESPACE_NOT_ALLOWED = "namespace_not_allowed"
    INVALID_ALERT = "invalid_alert"
    UNKNOWN_NAMESPACE = "unknown_namespace"  # the API server says so
    REFUSED = "refused_by_api_server"
    # Skipped: resolved alerts of a group that has no open Incident; nothing to do.
    NO_OPEN_INCIDENT = "no_open_incident"


@dataclass(frozen=True)
class MappingRules:
    """Which labels name the target, and where Incidents may be created."""

    namespace_label: str = DEFAULT_NAMESPACE_LABEL
    target_labels: tuple[str, ...] = DEFAULT_TARGET_LABELS
    # fnmatch patterns; empty means any namespace.
    allowed_namespaces: tuple[str, ...] = ()

    def namespace_allowed(self, namespace: str) -> bool:
        return not self.allowed_namespaces or any(
            fnmatch.fnmatchcase(namespace, pattern) for pattern in self.allowed_namespaces
        )


@dataclass(frozen=True)
class AlertNote:
    """An alert that did not become part of an Incident, and why."""

    fingerprint: str
    alertname: str | None
    reason: Reason
    message: str
    namespace: str | None = None
    target: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "fingerprint": self.fingerprint,
            "alertname": self.alertname,
            "reason": self.reason.value,
            "message": self.message,
        }
        if self.namespace is not None:
            body["namespace"] = self.namespace
        if self.target is not None:
            body["target"] = self.target
        return body


@dataclass(frozen=True)
class TargetAlerts:
    """The alerts of one group that name one Deployment: the material of one Incident."""

    namespace: str
    deployment: str
    group_key: str
    records: tuple[AlertRecord, ...]  # representative first
    spec: IncidentSpec  # of a new Incident for these alerts
    external_url: str = ""

    @property
    def group_hash(self) -> str:
        return group_hash(self.group_key, self.namespace, self.deployment)

    @property
    def firing(self) -> bool:
        return any(record.status is AlertStatus.FIRING for record in self.records)

    @property
    def group_label(self) -> str:
        """The value of LABEL_GROUP on this group's Incidents."""
        return self.group_hash[:_GROUP_LABEL_LENGTH]

    @property
    def group_selector(self) -> str:
        return f"{LABEL_GROUP}={self.group_label}"

    def name(self, episode: int = 1) -> str:
        return incident_name(self.deployment, self.group_hash, episode)

    def notes(self, reason: Reason, message: str) -> tuple[AlertNote, ...]:
        return tuple(
            AlertNote(
                record.fingerprint,
                record.alertname,
                reason,
                message,
                namespace=self.namespace,
                target=self.deployment,
            )
            for record in self.records
        )

    def body(self, episode: int = 1) -> dict[str, Any]:
        """The Incident to create for these alerts."""
        labels = {
            LABEL_MANAGED_BY: MANAGED_BY,
            LABEL_SOURCE: SourceType.ALERTMANAGER.value,
            LABEL_GROUP: self.group_label,
            LABEL_EPISODE: str(episode),
        }
        alertname = self.spec.source.alertname
        if alertname and is_label_value(alertname):
            labels[LABEL_ALERTNAME] = alertname
        metadata: dict[str, Any] = {"name": self.name(episode), "labels": labels}
        if self.external_url and len(self.external_url) <= 2048:
            metadata["annotations"] = {ANNOTATION_ALERTMANAGER: self.external_url}
        return {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "Incident",
            "metadata": metadata,
            "spec": self.spec.to_api_dict(),
        }


@dataclass(frozen=True)
class GroupMapping:
    """Every alert of a payload, in exactly one of: a target, unmapped, rejected."""

    targets: tuple[TargetAlerts, ...] = ()
    unmapped: tuple[AlertNote, ...] = ()
    rejected: tuple[AlertNote, ...] = ()
    received: int = 0


# ----------------------------------------------------------------- names


def group_hash(group_key: str, namespace: str, deployment: str) -> str:
    """The hex sha256 of what identifies an Incident made from alerts."""
    identity = "\n".join((group_key, namespace, deployment))
    return hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()


def incident_name(deployment: str, digest: str, episode: int = 1) -> str:
    """``<deployment, cut to 40>-<16 hex>``, then ``-<episode>`` from the second episode on."""
    prefix = deployment[:_NAME_PREFIX_LENGTH].rstrip("-.")
    name = f"{prefix}-{digest[:_NAME_HASH_LENGTH]}"
    return name if episode <= 1 else f"{name}-{episode}"


def is_label_value(value: str) -> bool:
    return len(value) <= 63 and _LABEL_VALUE.fullmatch(value) is not None


# ----------------------------------------------------------------- alerts → targets


def map_payload(payload: WebhookPayload, rules: MappingRules) -> GroupMapping:
    """Sort every alert of the group into a target (one Incident each), unmapped or rejected."""
    unmapped: list[AlertNote] = []
    rejected: list[AlertNote] = []
    by_target: dict[tuple[str, str], list[WebhookAlert]] = {}
    for alert in payload.alerts:
        labels = {**payload.common_labels, **alert.labels}
        target, note = _target_of(alert, labels, rules)
        if note is not None:
            unmapped_reasons = (Reason.NO_NAMESPACE_LABEL, Reason.NO_TARGET_LABEL)
            (unmapped if note.reason in unmapped_reasons else rejected).append(note)
        elif target is not None:
            by_target.setdefault(target, []).append(alert)
    targets = []
    for (namespace, deployment), alerts in by_target.items():
        built, notes = _target_alerts(payload, namespace, deployment, alerts)
        rejected.extend(notes)
        if built is not None:
            targets.append(built)
    return GroupMapping(
        targets=tuple(targets),
        unmapped=tuple(unmapped),
        rejected=tuple(rejected),
        received=len(payload.alerts),
    )


def _target_of(
    alert: WebhookAlert, labels: Mapping[str, str], rules: MappingRules
) -> tuple[tuple[str, str] | None, AlertNote | None]:
    def note(reason: Reason, message: str, **where: str | None) -> AlertNote:
        return AlertNote(alert.fingerprint, alert.alertname, reason, message, **where)

    namespace = labels.get(rules.namespace_label, "")
    if not namespace:
        return None, note(
            Reason.NO_NAMESPACE_LABEL, f"the alert has no {rules.namespace_label!r} label"
        )
    label, deployment = next(
        ((name, labels[name]) for name in rules.target_labels if labels.get(name)), ("", "")
    )
    if not deployment:
        return None, note(
            Reason.NO_TARGET_LABEL,
            f"the alert names no Deployment (labels {', '.join(rules.target_labels)})",
            namespace=namespace,
        )
    if len(namespace) > 63 or not _NAMESPACE.fullmatch(namespace):
        return None, note(
            Reason.INVALID_NAMESPACE,
            f"label {rules.namespace_label}={_show(namespace)} is not a namespace name "
            "(a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters)",
        )
    if len(deployment) > 253 or not _DEPLOYMENT.fullmatch(deployment):
        return None, note(
            Reason.INVALID_TARGET,
            f"label {label}={_show(deployment)} is not a Deployment name (a DNS-1123 "
            "subdomain: lowercase letters, digits, '-' and '.', at most 253 characters)",
            namespace=namespace,
        )
    if not rules.namespace_allowed(namespace):
        return None, note(
            Reason.NAMESPACE_NOT_ALLOWED,
            f"the bridge does not create Incidents in namespace {namespace} "
            f"(allowed: {', '.join(rules.allowed_namespaces)})",
            namespace=namespace,
            target=deployment,
        )
    return (namespace, deployment), None


def _target_alerts(
    payload: WebhookPayload, namespace: str, deployment: str, alerts: Sequence[WebhookAlert]
) -> tuple[TargetAlerts | None, list[AlertNote]]:
    notes: list[AlertNote] = []
    records: list[AlertRecord] = []
    kept: list[WebhookAlert] = []
    for alert in alerts:
        try:
            records.append(_record(alert))
            kept.append(alert)
        except ValidationError as exc:
            message = describe_validation_error(exc, root="alert")
            notes.append(
                AlertNote(
                    alert.fingerprint,
                    alert.alertname[:256] if alert.alertname else None,
                    Reason.INVALID_ALERT,
                    message,
                    namespace=namespace,
                    target=deployment,
                )
            )
    if not records:
        return None, notes
    ordered = sorted(zip(records, kept, strict=True), key=lambda pair: _precedence(pair[0]))
    merged = merge_records((), [record for record, _ in ordered])
    representative, first = ordered[0]
    labels = {**payload.common_labels, **first.labels}
    title = _title(first, payload, representative.alertname, namespace, deployment)
    try:
        spec = IncidentSpec(
            target=TargetRef(name=deployment),
            title=title,
            source=IncidentSource(
                type=SourceType.ALERTMANAGER,
                alertname=representative.alertname,
                fingerprint=representative.fingerprint,
                group_key=payload.group_key,
                labels=labels,
                alerts=cap_records(merged),
            ),
        )
    except ValidationError as exc:  # pragma: no cover - every part was validated above
        message = describe_validation_error(exc)
        notes.extend(
            AlertNote(a.fingerprint, a.alertname, Reason.INVALID_ALERT, message) for a in kept
        )
        return None, notes
    target = TargetAlerts(
        namespace=namespace,
        deployment=deployment,
        group_key=payload.group_key,
        records=tuple(merged),
        spec=spec,
        external_url=payload.external_url,
    )
    return target, notes


def _record(alert: WebhookAlert) -> AlertRecord:
    return AlertRecord(
        fingerprint=alert.fingerprint,
        alertname=alert.alertname,
        status=AlertStatus(alert.status),
        starts_at=alert.starts_at,
        ends_at=alert.ends_at if alert.status == "resolved" else None,
        labels=dict(alert.labels),
    )


def _precedence(record: AlertRecord) -> tuple[bool, int, datetime, str]:
    """Which alert represents the group: firing first, then the most urgent severity label,
    then the oldest, then by fingerprint (so the choice does not depend on the order)."""
    hint = severity_hint_from_labels(record.labels)
    return (
        record.status is not AlertStatus.FIRING,
        -(hint.urgency if hint else -1),
        record.starts_at or _FAR_FUTURE,
        record.fingerprint,
    )


def _title(
    alert: WebhookAlert,
    payload: WebhookPayload,
    alertname: str | None,
    namespace: str,
    deployment: str,
) -> str:
    summary = (
        alert.annotations.get("summary")
        or payload.common_annotations.get("summary")
        or alert.annotations.get("description")
        or ""
    )
    one_line = " ".join(summary.split()) or f"{alertname or 'Alert'} on {namespace}/{deployment}"
    if len(one_line) > MAX_TITLE_LENGTH:
        return one_line[: MAX_TITLE_LENGTH - 1] + "…"
    return one_line


def _show(value: str) -> str:
    return repr(value) if len(value) <= 80 else f"{value[:60]!r}… ({len(value)} characters)"


# ----------------------------------------------------------------- merging


def _is_stale(incoming: AlertRecord, known: AlertRecord) -> bool:
    """An incoming state older than the one recorded: a delayed or out-of-order resend (two
    Alertmanager replicas both notify) must not turn a resolved alert back into a firing one."""
    if incoming.starts_at and known.starts_at:
        if incoming.starts_at < known.starts_at:
            return True
        if incoming.starts_at > known.starts_at:
            return False
    return known.status is AlertStatus.RESOLVED and incoming.status is AlertStatus.FIRING


def merge_records(
    existing: Iterable[AlertRecord], incoming: Iterable[AlertRecord]
) -> list[AlertRecord]:
    """The recorded alerts, updated by fingerprint: known alerts take their new state (unless
    it is stale), new alerts are appended. Order: as first seen."""
    merged = {record.fingerprint: record for record in existing}
    for record in incoming:
        known = merged.get(record.fingerprint)
        if known is None or not _is_stale(record, known):
            merged[record.fingerprint] = record
    return list(merged.values())


def cap_records(records: Sequence[AlertRecord]) -> tuple[AlertRecord, ...]:
    """At most MAX_RECORDED_ALERTS: firing alerts before resolved ones, recent before old;
    the kept alerts stay in their order."""
    if len(records) <= MAX_RECORDED_ALERTS:
        return tuple(records)

    def priority(index: int) -> tuple[bool, float]:
        record = records[index]
        latest = record.ends_at or record.starts_at
        return (record.status is not AlertStatus.FIRING, -(latest.timestamp() if latest else 0))

    keep = sorted(sorted(range(len(records)), key=priority)[:MAX_RECORDED_ALERTS])
    return tuple(records[index] for index in keep)


def resolution(
    records: Sequence[AlertRecord], recorded: datetime | None, now: datetime
) -> datetime | None:
    """When the whole group resolved: None while any alert fires; once all are resolved, the
    time already recorded, else the latest endsAt (else now)."""
    if not records or any(record.status is AlertStatus.FIRING for record in records):
        return None
    if recorded is not None:
        return recorded
    ends = [record.ends_at for record in records if record.ends_at is not None]
    return max(ends) if ends else now


# ----------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Create:
    episode: int
    body: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])


@dataclass(frozen=True)
class Patch:
    name: str
    patch: dict[str, Any]
    recorded: int  # alerts recorded after the patch


@dataclass(frozen=True)
class Keep:
    name: str
    recorded: int


@dataclass(frozen=True)
class Skip:
    message: str


Decision = Create | Patch | Keep | Skip


@dataclass(frozen=True)
class Episode:
    number: int
    incident: Mapping[str, Any] = field(repr=False)

    @property
    def name(self) -> str:
        return str(self.incident["metadata"]["name"])

    @property
    def source(self) -> IncidentSource:
        spec = self.incident.get("spec") or {}
        try:
            return IncidentSource.model_validate(spec.get("source") or {})
        except ValidationError:  # pragma: no cover - the CRD's schema makes it valid
            return IncidentSource(type=SourceType.ALERTMANAGER)

    @property
    def closed(self) -> bool:
        """Alertmanager reported the whole group resolved and the operator is done with it."""
        phase = (self.incident.get("status") or {}).get("phase")
        return self.source.resolved_at is not None and phase in _TERMINAL_PHASES


def episodes(incidents: Iterable[Mapping[str, Any]]) -> list[Episode]:
    """The Incidents of one alert group, oldest episode first."""
    found = []
    for incident in incidents:
        labels = (incident.get("metadata") or {}).get("labels") or {}
        try:
            number = int(labels.get(LABEL_EPISODE, "1"))
        except ValueError:
            number = 1
        found.append(Episode(number, incident))
    return sorted(found, key=lambda episode: (episode.number, episode.name))


def decide(target: TargetAlerts, incidents: Iterable[Mapping[str, Any]], now: datetime) -> Decision:
    """What to do with `target`'s alerts, given the Incidents already made for its group."""
    known = episodes(incidents)
    if not known:
        if target.firing:
            return Create(1, target.body(1))
        return Skip("resolved alerts of a group that has no Incident: nothing to open")
    latest = known[-1]
    source = latest.source
    if latest.closed and _reopens(target.records, source.alerts):
        episode = min(latest.number + 1, MAX_EPISODE)
        return Create(episode, target.body(episode))
    merged = cap_records(merge_records(source.alerts, target.records))
    resolved_at = resolution(merged, source.resolved_at, now)
    if merged == tuple(source.alerts) and resolved_at == source.resolved_at:
        return Keep(latest.name, len(merged))
    resource_version = (latest.incident.get("metadata") or {}).get("resourceVersion")
    patch: dict[str, Any] = {
        "spec": {
            "source": {
                "alerts": [record.to_api_dict() for record in merged],
                # null removes it: the group fires again.
                "resolvedAt": IncidentSource(resolved_at=resolved_at)
                .to_api_dict()
                .get("resolvedAt"),
            }
        }
    }
    if resource_version:
        # Optimistic concurrency: a concurrent writer makes this a 409 and we merge again.
        patch["metadata"] = {"resourceVersion": resource_version}
    return Patch(latest.name, patch, len(merged))


def _reopens(incoming: Iterable[AlertRecord], recorded: Sequence[AlertRecord]) -> bool:
    """A firing alert that the closed Incident has not seen resolve: a new episode."""
    known = {record.fingerprint: record for record in recorded}
    for record in incoming:
        if record.status is not AlertStatus.FIRING:
            continue
        before = known.get(record.fingerprint)
        if before is None or not _is_stale(record, before):
            return True
    return False
