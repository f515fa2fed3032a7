"""The status of Incidents and MitigationPolicies: the record of what was seen and done.

Every field defaults to None, so a status model built with only the fields a handler changes
dumps (`to_api_dict`) to exactly the merge patch that changes them.
"""

from enum import StrEnum

from pydantic import AwareDatetime, Field

from mitigator.models.actions import ACTION_MODEL_OF_TYPE, AnyAction
from mitigator.models.base import JsonObject, StatusModel
from mitigator.models.common import (
    CONDITION_REASON_PATTERN,
    ActionState,
    ActionType,
    Phase,
    Severity,
)
from mitigator.models.gitops import GitOpsMode

MAX_TIMELINE_ENTRIES = 200


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(StatusModel):
    """The standard metav1.Condition shape, so kubectl and tooling read it as usual."""

    type: str = Field(min_length=1, max_length=316)
    status: ConditionStatus
    reason: str = Field(pattern=CONDITION_REASON_PATTERN, min_length=1, max_length=1024)
    message: str = Field(default="", max_length=32768)
    last_transition_time: AwareDatetime
    observed_generation: int | None = Field(default=None, ge=0)


class Classification(StatusModel):
    """The severity the evidence justified, with the numbers that justified it."""

    severity: Severity
    reasons: tuple[str, ...] = ()
    observed: JsonObject = Field(default_factory=dict)
    evidence_complete: bool
    at: AwareDatetime | None = None


class ActionRecord(StatusModel):
    """One step of the plan as it happened: enough to explain it and to revert it."""

    id: str = Field(min_length=1)
    type: ActionType
    params: JsonObject = Field(default_factory=dict)
    state: ActionState
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    message: str | None = None
    before: JsonObject | None = None
    after: JsonObject | None = None
    evidence: str | None = Field(
        default=None,
        max_length=253,
        description="ConfigMap with the pods' last logs, their Events and the target's spec, "
        "kept before the step replaced or removed the pods.",
    )

    @property
    def action(self) -> AnyAction:
        """The typed action this step was planned with (status keeps it in wire form)."""
        return ACTION_MODEL_OF_TYPE[self.type].model_validate(self.params)


class CheckName(StrEnum):
    ERROR_RATE = "errorRate"
    P95_LATENCY = "p95Latency"
    PODS_READY = "podsReady"
    NO_FIRING_ALERTS = "noFiringAlerts"


class VerificationCheck(StatusModel):
    name: str = Field(min_length=1)
    passed: bool
    observed: str | None = None
    threshold: str | None = None
    message: str | None = None


class VerificationResult(StatusModel):
    checks: tuple[VerificationCheck, ...] = ()
    passed: bool
    at: AwareDatetime | None = None
    window_started_at: AwareDatetime | None = None
    passing_since: AwareDatetime | None = Field(
        default=None, description="Since when every check has passed without a break."
    )


class EscalationNotice(StatusModel):
    """One escalation level's notification and how its delivery went."""

    level: int = Field(ge=1)
    name: str | None = None
    notified_at: AwareDatetime | None = None
    # Written by older versions (the URL itself); now only `receiver` names the destination.
    webhook: str | None = None
    receiver: str | None = None
    delivered: bool | None = None
    attempts: int | None = Field(default=None, ge=0)
    last_attempt_at: AwareDatetime | None = None
    last_error: str | None = None
    resolved_notified: bool | None = None
    resolve_attempts: int | None = Field(default=None, ge=0)


class EscalationStatus(StatusModel):
    level: int | None = Field(default=None, ge=0, description="Highest level notified.")
    notified_at: AwareDatetime | None = None
    levels: tuple[EscalationNotice, ...] | None = None
    # Once Resolved: every level that wants to hear of it has (or was given up on).
    resolved_notices_done: bool | None = None


class TimelineEvent(StrEnum):
    """Event names the operator writes to the timeline (the field itself is free text)."""

    DETECTED = "Detected"
    CLASSIFIED = "Classified"
    PLANNED = "Planned"
    AWAITING_APPROVAL = "AwaitingApproval"
    APPROVED = "Approved"
    REFUSED = "Refused"
    ACTION_STARTED = "ActionStarted"
    ACTION_APPLIED = "ActionApplied"
    ACTION_FAILED = "ActionFailed"
    VERIFYING = "Verifying"
    VERIFICATION_FAILED = "VerificationFailed"
    VERIFIED = "Verified"
    ESCALATED = "Escalated"
    NOTIFIED = "Notified"
    ALERT_RESOLVED = "AlertResolved"
    REVERTED = "Reverted"
    RESOLVED = "Resolved"
    FAILED = "Failed"
    SUPPRESSED = "Suppressed"
    GITOPS = "GitOps"
    EVIDENCE = "EvidenceKept"


class TimelineEntry(StatusModel):
    at: AwareDatetime
    event: str = Field(min_length=1, max_length=64)
    message: str = Field(default="", max_length=4096)


class RevertRecord(StatusModel):
    action_id: str = Field(min_length=1)
    type: ActionType
    state: ActionState
    message: str | None = None
    at: AwareDatetime | None = None


class GitOpsState(StrEnum):
    SUSPENDED = "Suspended"
    RESTORED = "Restored"
    REFUSED = "Refused"
    PROCEEDED = "Proceeded"
    FAILED = "Failed"


class GitOpsRecord(StatusModel):
    """The GitOps tool applying the target, and what the incident did about it."""

    tool: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    name: str = Field(min_length=1, max_length=253)
    namespace: str = Field(min_length=1, max_length=63)
    mode: GitOpsMode
    state: GitOpsState
    before: JsonObject | None = None
    after: JsonObject | None = None
    message: str | None = Field(default=None, max_length=4096)
    at: AwareDatetime | None = None
    restored_at: AwareDatetime | None = None


class IncidentStatus(StatusModel):
    phase: Phase | None = None
    severity: Severity | None = None
    classification: Classification | None = None
    policy: str | None = None
    rule: str | None = None
    actions: tuple[ActionRecord, ...] | None = None
    current_step: int | None = Field(default=None, ge=0)
    verification: VerificationResult | None = None
    escalation: EscalationStatus | None = None
    timeline: tuple[TimelineEntry, ...] | None = Field(
        default=None, max_length=MAX_TIMELINE_ENTRIES
    )
    conditions: tuple[Condition, ...] | None = None
    observed_generation: int | None = Field(default=None, ge=0)
    sequence: int | None = Field(
        default=None, ge=0, description="How many times the operator has written this status."
    )
    detected_at: AwareDatetime | None = None
    mitigated_at: AwareDatetime | None = None
    resolved_at: AwareDatetime | None = None
    reverts: tuple[RevertRecord, ...] | None = None
    gitops: GitOpsRecord | None = None
    attached_to: str | None = Field(
        default=None,
        max_length=253,
        description="The Incident mitigating the target when this one was suppressed.",
    )
    message: str | None = None
    settled: bool | None = Field(
        default=None,
        description="The operator owes this Incident nothing more (final, and every resolved "
        "notice sent or given up on); it no longer watches it.",
    )


class PolicyStatus(StatusModel):
    conditions: tuple[Condition, ...] | None = None
    observed_generation: int | None = Field(default=None, ge=0)
    covered_deployments: tuple[str, ...] | None = None
    covered_count: int | None = Field(default=None, ge=0)
