"""From an Alertmanager alert group to one `TargetAlerts` per (namespace, Deployment) its
alerts name: the alerts an Incident records and what a new Incident holds. Every alert of a
payload ends up in exactly one of: a target, unmapped (it names none), rejected (it names one
the bridge refuses, or is itself invalid). Pure: the I/O lives in `mitigator.bridge.service`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError

from mitigator import API_GROUP, API_VERSION
from mitigator.bridge.identity import (
    LABEL_GROUP,
    group_hash,
    group_label,
    incident_annotations,
    incident_labels,
    incident_name,
)
from mitigator.bridge.limits import (
    ANNOTATION_DROPPED,
    Dropped,
    StorageLimits,
    cap_labels,
    dropped_annotation,
)
from mitigator.bridge.notes import UNMAPPED, AlertNote, Reason
from mitigator.bridge.payload import WebhookAlert, WebhookPayload
from mitigator.bridge.records import any_firing, cap_records, merge_records
from mitigator.bridge.targets import MappingRules, PodOwner, PodRef, followed, target_of
from mitigator.domain.classify import severity_hint_from_labels
from mitigator.models import (
    AlertRecord,
    AlertStatus,
    IncidentSource,
    IncidentSpec,
    SourceType,
    TargetRef,
    describe_validation_error,
)
from mitigator.models.base import JsonObject

MAX_TITLE_LENGTH = 256

_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class TargetAlerts:
    """The alerts of one group that name one Deployment: the material of one Incident."""

    namespace: str
    deployment: str
    group_key: str
    records: tuple[AlertRecord, ...]  # representative first
    spec: IncidentSpec  # of a new Incident for these alerts
    external_url: str = ""
    limits: StorageLimits = field(default_factory=StorageLimits)
    truncated_alerts: int = 0  # what Alertmanager left out of the notification
    # Labels left out of each alert's record (by fingerprint), when any were.
    label_drops: Mapping[str, int] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        """The target: (namespace, Deployment)."""
        return (self.namespace, self.deployment)

    @property
    def group_hash(self) -> str:
        return group_hash(self.group_key, self.namespace, self.deployment)

    @property
    def firing(self) -> bool:
        return any_firing(self.records)

    @property
    def group_label(self) -> str:
        """The value of LABEL_GROUP on this group's Incidents."""
        return group_label(self.group_hash)

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

    def dropped(self, kept: Iterable[AlertRecord]) -> Dropped:
        """What this notification left out of an Incident that records `kept` after it."""
        recorded = {record.fingerprint for record in kept}
        mine = [record.fingerprint for record in self.records]
        return Dropped(
            self.group_label,
            alerts=sum(1 for fingerprint in mine if fingerprint not in recorded),
            labels=sum(self.label_drops.get(fp, 0) for fp in mine if fp in recorded),
            truncated_alerts=self.truncated_alerts,
        )

    def body(self, episode: int = 1) -> JsonObject:
        """The Incident to create for these alerts."""
        metadata: JsonObject = {
            "name": self.name(episode),
            "labels": incident_labels(self.group_hash, episode, self.spec.source.alertname),
        }
        annotations = incident_annotations(self.external_url)
        dropped = self.dropped(self.spec.source.alerts)
        counted = dropped_annotation({dropped.group: dropped})
        if counted is not None:
            annotations[ANNOTATION_DROPPED] = counted
        if annotations:
            metadata["annotations"] = annotations
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


def pods_named(payload: WebhookPayload, rules: MappingRules) -> list[PodRef]:
    """The pods the payload's alerts name without naming a Deployment: to be followed to
    their Deployments (`mitigator.bridge.owners`) before `map_payload`."""
    found = (
        target_of(alert, {**payload.common_labels, **alert.labels}, rules)
        for alert in payload.alerts
    )
    return list(dict.fromkeys(item for item in found if isinstance(item, PodRef)))


def map_payload(
    payload: WebhookPayload,
    rules: MappingRules,
    limits: StorageLimits | None = None,
    owners: Mapping[tuple[str, str], PodOwner] | None = None,
) -> GroupMapping:
    """Sort every alert of the group into a target (one Incident each), unmapped or rejected.
    `owners`: the Deployment (or why none) of each pod that `pods_named` lists."""
    unmapped: list[AlertNote] = []
    rejected: list[AlertNote] = []
    by_target: dict[tuple[str, str], list[WebhookAlert]] = {}
    for alert in payload.alerts:
        labels = {**payload.common_labels, **alert.labels}
        target = target_of(alert, labels, rules)
        if isinstance(target, PodRef):
            target = followed(alert, target, (owners or {}).get(target.key))
        if isinstance(target, AlertNote):
            (unmapped if target.reason in UNMAPPED else rejected).append(target)
        else:
            by_target.setdefault(target, []).append(alert)
    targets = []
    for (namespace, deployment), alerts in by_target.items():
        built, notes = _target_alerts(
            payload, (namespace, deployment), alerts, limits=limits or StorageLimits(), rules=rules
        )
        rejected.extend(notes)
        if built is not None:
            targets.append(built)
    return GroupMapping(
        targets=tuple(targets),
        unmapped=tuple(unmapped),
        rejected=tuple(rejected),
        received=len(payload.alerts),
    )


def _target_alerts(
    payload: WebhookPayload,
    target: tuple[str, str],
    alerts: Sequence[WebhookAlert],
    *,
    limits: StorageLimits,
    rules: MappingRules,
) -> tuple[TargetAlerts | None, list[AlertNote]]:
    namespace, deployment = target
    notes: list[AlertNote] = []
    kept: list[tuple[AlertRecord, WebhookAlert]] = []
    drops: dict[int, int] = {}  # id of a record → labels left out of it
    first_labels = rules.naming_labels
    for alert in alerts:
        labels, dropped = cap_labels(alert.labels, limits, first_labels)
        try:
            record = _record(alert, labels)
        except ValidationError as exc:
            message = describe_validation_error(exc, root="alert")
            where = {"namespace": namespace, "target": deployment}
            notes.append(
                AlertNote(
                    alert.fingerprint, alert.alertname, Reason.INVALID_ALERT, message, **where
                )
            )
            continue
        kept.append((record, alert))
        drops[id(record)] = dropped
    if not kept:
        return None, notes
    ordered = sorted(kept, key=lambda pair: _precedence(pair[0]))
    merged = merge_records((), [record for record, _ in ordered])
    representative, first = ordered[0]
    source_labels, _ = cap_labels({**payload.common_labels, **first.labels}, limits, first_labels)
    # Every part was validated above, and the title is cut to fit: this spec is valid.
    spec = IncidentSpec(
        target=TargetRef(name=deployment),
        title=_title(first, payload, representative.alertname, namespace, deployment),
        source=IncidentSource(
            type=SourceType.ALERTMANAGER,
            alertname=representative.alertname,
            fingerprint=representative.fingerprint,
            group_key=payload.group_key,
            labels=source_labels,
            alerts=cap_records(merged, limits.max_alerts),
        ),
    )
    built = TargetAlerts(
        namespace=namespace,
        deployment=deployment,
        group_key=payload.group_key,
        records=tuple(merged),
        spec=spec,
        external_url=payload.external_url,
        limits=limits,
        truncated_alerts=payload.truncated_alerts,
        label_drops={r.fingerprint: drops[id(r)] for r in merged if drops.get(id(r))},
    )
    return built, notes


def _record(alert: WebhookAlert, labels: dict[str, str]) -> AlertRecord:
    return AlertRecord(
        fingerprint=alert.fingerprint,
        alertname=alert.alertname,
        status=AlertStatus(alert.status),
        starts_at=alert.starts_at,
        ends_at=alert.ends_at if alert.status == "resolved" else None,
        labels=labels,
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
