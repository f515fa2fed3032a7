"""The spec of an Incident: what is hurting, how we know, and what a person asked for."""

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, StrictBool

from mitigator.models.actions import ActionSteps
from mitigator.models.base import ApiModel
from mitigator.models.common import (
    DNS1123_SUBDOMAIN_PATTERN,
    KnownSeverity,
    Timestamp,
    reject_duplicates,
)


class TargetKind(StrEnum):
    DEPLOYMENT = "Deployment"


class TargetRef(ApiModel):
    """The workload the incident is about, in the Incident's own namespace."""

    kind: TargetKind = TargetKind.DEPLOYMENT
    name: str = Field(pattern=DNS1123_SUBDOMAIN_PATTERN, min_length=1, max_length=253)


class SourceType(StrEnum):
    MANUAL = "manual"
    ALERTMANAGER = "alertmanager"
    DRILL = "drill"


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class AlertRecord(ApiModel):
    """One alert of an Alertmanager group, as the bridge last saw it."""

    fingerprint: str = Field(min_length=1, max_length=128)
    alertname: str | None = Field(default=None, max_length=256)
    status: AlertStatus
    starts_at: Timestamp | None = None
    ends_at: Timestamp | None = None
    labels: dict[str, str] = Field(default_factory=dict)


def _reject_duplicate_fingerprints(alerts: tuple[AlertRecord, ...]) -> tuple[AlertRecord, ...]:
    # Mirror of `x-kubernetes-list-type: map` keyed on fingerprint.
    reject_duplicates(tuple(alert.fingerprint for alert in alerts))
    return alerts


class IncidentSource(ApiModel):
    """Where the incident came from; for Alertmanager, the alert group it stands for."""

    type: SourceType = SourceType.MANUAL
    alertname: str | None = Field(default=None, max_length=256)
    fingerprint: str | None = Field(default=None, max_length=128)
    group_key: str | None = Field(default=None, max_length=1024)
    labels: dict[str, str] = Field(default_factory=dict)
    alerts: Annotated[tuple[AlertRecord, ...], AfterValidator(_reject_duplicate_fingerprints)] = (
        Field(default=(), max_length=100)
    )
    resolved_at: Timestamp | None = Field(
        default=None, description="When Alertmanager reported the whole group resolved."
    )


class PolicyRef(ApiModel):
    name: str = Field(pattern=DNS1123_SUBDOMAIN_PATTERN, min_length=1, max_length=253)


class IncidentSpec(ApiModel):
    target: TargetRef
    severity: KnownSeverity | None = Field(
        default=None,
        description="Given severity: wins over the classification, which is still recorded.",
    )
    title: str | None = Field(default=None, max_length=256)
    source: IncidentSource = Field(default_factory=IncidentSource)
    policy_ref: PolicyRef | None = None
    actions: ActionSteps | None = Field(
        default=None, description="Explicit ladder of steps; overrides the policy's plan."
    )
    dry_run: StrictBool = False
    approved: StrictBool = False
    resolve: StrictBool = Field(default=False, description="A person closes the incident.")
    # Who approved and who resolved, as the API server saw them: config/approval/'s
    # ValidatingAdmissionPolicy refuses a name other than the caller's (see docs/CLI.md).
    approved_by: str | None = Field(default=None, max_length=256)
    approved_at: Timestamp | None = None
    resolved_by: str | None = Field(default=None, max_length=256)
    resolved_at: Timestamp | None = None
