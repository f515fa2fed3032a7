"""The Incident's status as one tick changes it: typed fields instead of a bag of updates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from mitigator.domain.timeline import append_timeline, timeline_entry
from mitigator.models import (
    ActionRecord,
    ActionState,
    Classification,
    GitOpsRecord,
    IncidentStatus,
    Phase,
    RevertRecord,
    Severity,
    TimelineEntry,
    TimelineEvent,
    VerificationResult,
)


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the Incident (and on the target when `on_target`)."""

    type: str  # "Normal" | "Warning"
    reason: str
    message: str
    on_target: bool = False


# Which note names the Event of a tick that made several, most important first (a warning
# comes before any note that is not one). Notes not listed come last.
_IMPORTANCE: tuple[str, ...] = tuple(
    event.value
    for event in (
        TimelineEvent.FAILED,
        TimelineEvent.ESCALATED,
        TimelineEvent.REFUSED,
        TimelineEvent.ACTION_FAILED,
        TimelineEvent.VERIFICATION_FAILED,
        TimelineEvent.RESOLVED,
        TimelineEvent.ACTION_APPLIED,
        TimelineEvent.REVERTED,
        TimelineEvent.SUPPRESSED,
        TimelineEvent.AWAITING_APPROVAL,
        TimelineEvent.APPROVED,
        TimelineEvent.VERIFIED,
        TimelineEvent.GITOPS,
        TimelineEvent.EVIDENCE,
        TimelineEvent.VERIFYING,
        TimelineEvent.ACTION_STARTED,
        TimelineEvent.PLANNED,
        TimelineEvent.CLASSIFIED,
        TimelineEvent.DETECTED,
    )
)


def _rank(event: Event) -> tuple[int, int]:
    order = _IMPORTANCE.index(event.reason) if event.reason in _IMPORTANCE else len(_IMPORTANCE)
    return (0 if event.type == "Warning" else 1, order)


def summarize(events: Sequence[Event]) -> Event | None:
    """One Kubernetes Event for what a tick noted about one object (each Event is a write;
    the timeline in status keeps every note): the reason of the most important note, Warning
    if any note is one, and its message first, then the others in the order they happened,
    each named by its reason."""
    if not events:
        return None
    if len(events) == 1:
        return events[0]
    head = min(events, key=_rank)
    others = "; ".join(f"{e.reason}: {e.message}" for e in events if e is not head)
    warning = any(e.type == "Warning" for e in events)
    return Event(
        "Warning" if warning else "Normal",
        head.reason,
        f"{head.message} (this tick also: {others})",
        head.on_target,
    )


@dataclass(kw_only=True)
class StatusDraft:
    """The fields of the status the lifecycle decides; the rest (escalation, conditions, the
    write sequence) belong to others and pass through untouched."""

    phase: Phase | None
    message: str | None
    severity: Severity | None
    classification: Classification | None
    policy: str | None
    rule: str | None
    actions: list[ActionRecord]
    current_step: int | None
    verification: VerificationResult | None
    reverts: list[RevertRecord]
    detected_at: datetime | None
    mitigated_at: datetime | None
    resolved_at: datetime | None
    attached_to: str | None
    gitops: GitOpsRecord | None
    timeline: list[TimelineEntry]
    events: list[Event] = field(default_factory=list)

    @classmethod
    def of(cls, status: IncidentStatus) -> StatusDraft:
        return cls(
            phase=status.phase,
            message=status.message,
            severity=status.severity,
            classification=status.classification,
            policy=status.policy,
            rule=status.rule,
            actions=list(status.actions or ()),
            current_step=status.current_step,
            verification=status.verification,
            reverts=list(status.reverts or ()),
            detected_at=status.detected_at,
            mitigated_at=status.mitigated_at,
            resolved_at=status.resolved_at,
            attached_to=status.attached_to,
            gitops=status.gitops,
            timeline=list(status.timeline or ()),
        )

    def onto(self, status: IncidentStatus) -> IncidentStatus:
        """`status` with the fields this draft decides replaced by the draft's."""
        return status.model_copy(
            update={
                "phase": self.phase,
                "message": self.message,
                "severity": self.severity,
                "classification": self.classification,
                "policy": self.policy,
                "rule": self.rule,
                "actions": tuple(self.actions) or None,
                "current_step": self.current_step,
                "verification": self.verification,
                "reverts": tuple(self.reverts) or None,
                "detected_at": self.detected_at,
                "mitigated_at": self.mitigated_at,
                "resolved_at": self.resolved_at,
                "attached_to": self.attached_to,
                "gitops": self.gitops,
                "timeline": tuple(self.timeline) or None,
            }
        )

    @property
    def step_index(self) -> int:
        return self.current_step or 0

    @property
    def holds_claim(self) -> bool:
        """An action of this incident is applied on the target (its claim is taken)."""
        return any(record.state is ActionState.APPLIED for record in self.actions)

    def enter(self, phase: Phase, message: str) -> None:
        self.phase = phase
        self.message = message

    def note(
        self,
        event: TimelineEvent,
        message: str,
        *,
        now: datetime,
        warning: bool = False,
        on_target: bool = False,
    ) -> None:
        """One line in the timeline, and the same as a Kubernetes Event."""
        entry = timeline_entry(event.value, message, at=now)
        self.timeline = list(append_timeline(self.timeline, entry))
        self.events.append(
            Event("Warning" if warning else "Normal", event.value, message, on_target)
        )
