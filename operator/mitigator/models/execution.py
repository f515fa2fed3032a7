"""What crosses between the lifecycle and the executor: one request per action or revert, and
the outcome the executor answers with."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from mitigator.models.actions import AnyAction, action_type_of
from mitigator.models.base import JsonObject
from mitigator.models.common import ActionState, ActionType

# A revert's record on the target carries the key of the action it undoes plus this suffix.
REVERT_KEY_SUFFIX = "/revert"


def action_key(incident_uid: str, action_id: str) -> str:
    """The key of an action's record on the target: which incident, which step."""
    return f"{incident_uid}/{action_id}"


@dataclass(frozen=True, kw_only=True)
class ActionRequest:
    """Apply `action` to Deployment `namespace/target` as step `action_id` of an incident."""

    namespace: str
    target: str
    incident_uid: str
    action_id: str
    action: AnyAction
    max_replicas: int
    now: datetime

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

    @property
    def key(self) -> str:
        return action_key(self.incident_uid, self.action_id) + REVERT_KEY_SUFFIX


@dataclass(frozen=True)
class ActionOutcome:
    """What an action (or its revert) did: Applied, Skipped (refused as the target is) or
    Failed."""

    state: ActionState
    message: str
    before: JsonObject = field(default_factory=dict)
    after: JsonObject = field(default_factory=dict)
    # True when the target already carried this action's record: applied by an earlier run
    # of the operator that stopped before writing the Incident's status.
    recovered: bool = False
    # A transient failure (conflict, API unavailable): the same step is tried again later.
    retryable: bool = False
