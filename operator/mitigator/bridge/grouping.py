"""From an Alertmanager alert group to one `TargetAlerts` per (namespace, Deployment) its
alerts name: the alerts an Incident records and what a new Incident holds. Every alert of a
payload ends up in exactly one of: a target, unmapped (it names none), rejected (it names one
the bridge refuses, or is itself invalid). Pure: the I/O lives in `mitigator.bridge.service`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
from mitigator.bridge.notes import AlertNote, Reason
from mitigator.bridge.payload import WebhookAlert, WebhookPayload
from mitigator.bridge.records import any_firing, cap_records, merge_records
from mitigator.bridge.targets import MappingRules, target_of
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
_UNMAPPED = (Reason.NO_NAMESPACE_LABEL, Reason.NO_TARGET_LABEL)


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

    def body(self, episode: int = 1) -> JsonObject:
        """The Incident to create for these alerts."""
        metadata: JsonObject = {
            "name": self.name(episode),
            "labels": incident_labels(self.group_hash, episode, self.spec.source.alertname),
        }
        annotations = incident_annotations(self.external_url)
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


def map_payload(payload: WebhookPayload, rules: MappingRules) -> GroupMapping:
    """Sort every alert of the group into a target (one Incident each), unmapped or rejected."""
    unmapped: list[AlertNote] = []
    rejected: list[AlertNote] = []
    by_target: dict[tuple[str, str], list[WebhookAlert]] = {}
    for alert in payload.alerts:
        labels = {**payload.common_labels, **alert.labels}
        target = target_of(alert, labels, rules)
        if isinstance(target, AlertNote):
            (unmapped if target.reason in _UNMAPPED else rejected).append(target)
        else:
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


def _target_alerts(
    payload: WebhookPayload, namespace: str, deployment: str, alerts: Sequence[WebhookAlert]
) -> tuple[TargetAlerts | None, list[AlertNote]]:
    notes: list[AlertNote] = []
    kept: list[tuple[AlertRecord, WebhookAlert]] = []
    for alert in alerts:
        try:
            kept.append((_record(alert), alert))
        except ValidationError as exc:
            alertname = alert.alertname[:256] if alert.alertname else None
            message = describe_validation_error(exc, root="alert")
            where = {"namespace": namespace, "target": deployment}
            notes.append(
                AlertNote(alert.fingerprint, alertname, Reason.INVALID_ALERT, message, **where)
            )
    if not kept:
        return None, notes
    ordered = sorted(kept, key=lambda pair: _precedence(pair[0]))
    merged = merge_records((), [record for record, _ in ordered])
    representative, first = ordered[0]
    # Every part was validated above, and the title is cut to fit: this spec is valid.
    spec = IncidentSpec(
        target=TargetRef(name=deployment),
        title=_title(first, payload, representative.alertname, namespace, deployment),
        source=IncidentSource(
            type=SourceType.ALERTMANAGER,
            alertname=representative.alertname,
            fingerprint=representative.fingerprint,
            group_key=payload.group_key,
            labels={**payload.common_labels, **first.labels},
            alerts=cap_records(merged),
        ),
    )
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
