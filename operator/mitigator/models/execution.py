"""What crosses between the lifecycle and the executor: one request per action or revert, and
the outcome the executor answers with."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from mitigator.models.actions import AnyAction, action_type_of
from mitigator.models.base import JsonObject
from mitigator.models.common import ActionState, ActionType
from mitigator.models.evidence import TargetRead
from mitigator.models.gitops import GitOpsOwner

# A revert's record on the target carries the key of the action it undoes plus this suffix.
REVERT_KEY_SUFFIX = "/revert"


def action_key(incident_uid: str, action_id: str) -> str:
    """The key of an action's record on the target: which incident, which step."""
    return f"{incident_uid}/{action_id}"


@dataclass(frozen=True)
class AppliedRecord:
    """An action mitigator recorded on the target (see mitigator.actions.marker)."""

    key: str
    action_type: str
    at: datetime | None

    @property
    def is_revert(self) -> bool:
        """A revert undoes a mitigation rather than makes one."""
        return self.key.endswith(REVERT_KEY_SUFFIX)

    def made_by(self, incident_uid: str) -> bool:
        return self.key.startswith(action_key(incident_uid, ""))


# Given the action records on the target as the write read them: why not to act, or None.
# The domain's guardrails (cooldown, hourly cap) decide; the executor asks in the same
# read-test-write cycle that applies the action, so no decision rests on an earlier read.
Admission = Callable[[Sequence[AppliedRecord]], str | None]


@dataclass(frozen=True, kw_only=True)
class ActionRequest:
    """Apply `action` to Deployment `namespace/target` as step `action_id` of an incident,
    if `admit` allows it and no other live Incident holds the target's claim."""

    namespace: str
    target: str
    incident_uid: str
    incident_name: str
    action_id: str
    action: AnyAction
    max_replicas: int
    admit: Admission
    now: datetime
    # The target as this tick read it (None: the executor reads it): acted on without a
    # second read, the write still testing it (a read no longer current is read again).
    read: TargetRead | None = None

    @property
    def action_type(self) -> ActionType:
        return action_type_of(self.action)

    @property
    def key(self) -> str:
        return action_key(self.incident_uid, self.action_id)


@dataclass(frozen=True, kw_only=True)
class RevertRequest:
    """Undo step `action_id` from the state recorded before it (`before`)."""

    namespace: str
    target: str
    incident_uid: str
    action_id: str
    action_type: ActionType
    before: JsonObject
    now: datetime
    read: TargetRead | None = None  # as for ActionRequest
    # The incident is done with the target after this revert: the same patch gives its
    # claim up (if it still holds it), instead of a second patch of the same Deployment.
    release_claim: bool = False

    @property
    def key(self) -> str:
        return action_key(self.incident_uid, self.action_id) + REVERT_KEY_SUFFIX


@dataclass(frozen=True, kw_only=True)
class ReleaseRequest:
    """The incident is done with the target: give its claim up (if it still holds it)."""

    namespace: str
    target: str
    incident_uid: str
    read: TargetRead | None = None  # as for ActionRequest


@dataclass(frozen=True, kw_only=True)
class GitOpsRequest:
    """Suspend the reconciliation of the GitOps tool that applies the target (or, with
    `before`, restore it to that)."""

    owner: GitOpsOwner
    incident_uid: str
    now: datetime
    before: JsonObject | None = None

    @property
    def key(self) -> str:
        suffix = REVERT_KEY_SUFFIX if self.before is not None else ""
        return action_key(self.incident_uid, "gitops") + suffix


@dataclass(frozen=True)
class ActionOutcome:
    """What an action (or its revert) did: Applied, Skipped (the target as it is makes it
    pointless or impossible), Refused (a guardrail, or another Incident's claim) or Failed."""

    state: ActionState
    message: str
    before: JsonObject = field(default_factory=dict)
    after: JsonObject = field(default_factory=dict)
    # True when the target already carried this action's record: applied by an earlier run
    # of the operator that stopped before writing the Incident's status.
    recovered: bool = False
    # A transient failure (conflict, API unavailable): the same step is tried again later.
    retryable: bool = False
    # Refused because this Incident holds the target's claim: its name.
    claimed_by: str | None = None
    # The ConfigMap holding what the step was about to destroy (pods' logs, Events, spec).
    evidence: str | None = None
    # The incident's claim on the target was given up in the same write (a revert's).
    released_claim: bool = False
