"""An action step: one rung of a mitigation ladder, shared by Incidents and policy rules.

The error messages here are the CRD's CEL messages, word for word, so a person sees the same
sentence whether the API server or the operator refused the step.
"""

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictInt, field_validator, model_validator

from mitigator.models.base import ApiModel
from mitigator.models.common import (
    DNS1035_LABEL_PATTERN,
    DNS1123_LABEL_PATTERN,
    ENV_VAR_NAME_PATTERN,
    STEP_ID_PATTERN,
    ActionType,
)

STEP_NEEDS_EXACTLY_ONE_ACTION = (
    "exactly one of rollback, scale, restart, setEnv, maintenance, isolate must be set"
)
SCALE_NEEDS_EXACTLY_ONE_AMOUNT = "scale needs exactly one of replicas and increment"
SCALE_MAX_BELOW_REPLICAS = "scale.max must be >= scale.replicas"
ENV_NAMES_INVALID = (
    "setEnv.env keys must be valid environment variable names ([A-Za-z_][A-Za-z0-9_]*)"
)
STEP_IDS_NOT_UNIQUE = "action step ids must be unique"

MAX_STEPS = 10
DEFAULT_RETRY_AFTER_SECONDS = 120

_ENV_VAR_NAME = re.compile(ENV_VAR_NAME_PATTERN.removeprefix("^").removesuffix("$"))


class RollbackAction(ApiModel):
    """Put a previous revision's pod template back, like `kubectl rollout undo`."""

    to_revision: StrictInt | None = Field(
        default=None,
        ge=1,
        description="Revision to roll back to; the one before the current one if unset.",
    )


@dataclass(frozen=True, kw_only=True)
class ReplicaTarget:
    """The replica count a scale step sets, what was asked for, and the cap that applied."""

    replicas: int
    requested: int
    limit: int

    @property
    def capped(self) -> bool:
        return self.replicas != self.requested


class ScaleAction(ApiModel):
    """Set the replica count (absolute or relative), never above the policy's max replicas."""

    replicas: StrictInt | None = Field(default=None, ge=0, description="Absolute replica count.")
    increment: StrictInt | None = Field(default=None, ge=1, description="Replicas to add.")
    max_replicas: StrictInt | None = Field(
        default=None,
        alias="max",
        ge=1,
        description="Cap for this step; the policy's guardrails.maxReplicas also applies.",
    )

    @model_validator(mode="after")
    def _one_amount_within_max(self) -> "ScaleAction":
        if (self.replicas is None) == (self.increment is None):
            raise ValueError(SCALE_NEEDS_EXACTLY_ONE_AMOUNT)
        if (
            self.replicas is not None
            and self.max_replicas is not None
            and self.max_replicas < self.replicas
        ):
            raise ValueError(SCALE_MAX_BELOW_REPLICAS)
        return self

    def target_replicas(self, current: int, *, max_replicas: int) -> ReplicaTarget:
        """The replicas this step sets on a Deployment running `current`, under both the
        step's `max` and the policy's guardrails.maxReplicas.

        An increment never scales down: a target already at or above the cap keeps its
        replicas. An absolute `replicas` may scale down, as the guide does to relieve
        exhausted resources.
        """
        limit = max_replicas if self.max_replicas is None else min(self.max_replicas, max_replicas)
        if self.replicas is not None:
            return ReplicaTarget(
                replicas=min(self.replicas, limit), requested=self.replicas, limit=limit
            )
        requested = current + (self.increment or 0)
        replicas = max(min(requested, limit), current)
        return ReplicaTarget(replicas=replicas, requested=requested, limit=limit)


class RestartAction(ApiModel):
    """Rolling restart through the pod template's `kubectl.kubernetes.io/restartedAt`."""


class SetEnvAction(ApiModel):
    """Set environment variables on one container, e.g. DISABLE_WEB_SEARCH=true."""

    container: str | None = Field(
        default=None,
        pattern=DNS1123_LABEL_PATTERN,
        max_length=63,
        description="Container to change; the pod template's first container if unset.",
    )
    env: dict[str, Annotated[str, Field(max_length=4096)]] = Field(
        min_length=1, max_length=32, description="Variables to set, name to value."
    )

    @field_validator("env")
    @classmethod
    def _env_names_valid(cls, env: dict[str, str]) -> dict[str, str]:
        if not all(_ENV_VAR_NAME.fullmatch(name) for name in env):
            raise ValueError(ENV_NAMES_INVALID)
        return env


class OtherServices(StrEnum):
    """What maintenance does with the other Services that select the target's pods."""

    SWITCH = "switch"
    REFUSE = "refuse"


class MaintenanceAction(ApiModel):
    """Point the Services that select the target's pods at a maintenance backend (503 +
    Retry-After), and scale the target to 0."""

    service: str | None = Field(
        default=None,
        pattern=DNS1035_LABEL_PATTERN,
        max_length=63,
        description="The target's Service (it must select the target's pods); every Service "
        "that selects them if unset.",
    )
    other_services: OtherServices = Field(
        default=OtherServices.SWITCH,
        description="Other Services selecting the target's pods: switch them too, or refuse "
        "the step naming them.",
    )
    backend_selector: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        min_length=1,
        max_length=16,
        description="Pod labels of the maintenance backend the Service is switched to.",
    )
    retry_after_seconds: StrictInt = Field(
        default=DEFAULT_RETRY_AFTER_SECONDS,
        ge=1,
        le=86400,
        description="Retry-After the maintenance backend advertises.",
    )


class IsolateAction(ApiModel):
    """Cut the target's pods off the network (a NetworkPolicy denying all ingress and egress)
    and keep them for forensics, instead of scaling them away; lifted on resolve."""


AnyAction = (
    RollbackAction | ScaleAction | RestartAction | SetEnvAction | MaintenanceAction | IsolateAction
)

# The steps that replace pods (rollback, restart) or remove them (maintenance scales to 0), and
# isolate (the guide's security runbook: preserve evidence, then isolate): their evidence is
# kept before they are written (actions/evidence.py).
POD_REPLACING_ACTIONS = frozenset(
    {ActionType.ROLLBACK, ActionType.RESTART, ActionType.MAINTENANCE, ActionType.ISOLATE}
)

# The model of each action type, and the step's field that holds it.
ACTION_MODEL_OF_TYPE: dict[ActionType, type[AnyAction]] = {
    ActionType.ROLLBACK: RollbackAction,
    ActionType.SCALE: ScaleAction,
    ActionType.RESTART: RestartAction,
    ActionType.SET_ENV: SetEnvAction,
    ActionType.MAINTENANCE: MaintenanceAction,
    ActionType.ISOLATE: IsolateAction,
}
_FIELD_OF_TYPE = {
    ActionType.ROLLBACK: "rollback",
    ActionType.SCALE: "scale",
    ActionType.RESTART: "restart",
    ActionType.SET_ENV: "set_env",
    ActionType.MAINTENANCE: "maintenance",
    ActionType.ISOLATE: "isolate",
}
_TYPE_OF_CLASS = {model: action_type for action_type, model in ACTION_MODEL_OF_TYPE.items()}


class ActionStep(ApiModel):
    """One step: exactly one of the action keys, and an optional stable id."""

    id: str | None = Field(
        default=None,
        pattern=STEP_ID_PATTERN,
        max_length=63,
        description="Stable id of the step; '<index>-<type>' if unset.",
    )
    rollback: RollbackAction | None = None
    scale: ScaleAction | None = None
    restart: RestartAction | None = None
    set_env: SetEnvAction | None = None
    maintenance: MaintenanceAction | None = None
    isolate: IsolateAction | None = None

    @model_validator(mode="after")
    def _exactly_one_action(self) -> "ActionStep":
        if sum(getattr(self, name) is not None for name in _FIELD_OF_TYPE.values()) != 1:
            raise ValueError(STEP_NEEDS_EXACTLY_ONE_ACTION)
        return self

    @classmethod
    def of(cls, action: AnyAction, *, step_id: str | None = None) -> "ActionStep":
        """A step wrapping `action`: `ActionStep.of(ScaleAction(increment=2))`."""
        field_name = _FIELD_OF_TYPE[action_type_of(action)]
        return cls.model_validate({"id": step_id, field_name: action})

    @property
    def action_type(self) -> ActionType:
        """Which action key is set."""
        for action_type, field_name in _FIELD_OF_TYPE.items():
            if getattr(self, field_name) is not None:
                return action_type
        raise AssertionError("unreachable: the validator guarantees one action")

    @property
    def action(self) -> AnyAction:
        action: AnyAction = getattr(self, _FIELD_OF_TYPE[self.action_type])
        return action

    @property
    def params(self) -> dict[str, Any]:
        """The action's parameters in wire form (what status.actions[].params records)."""
        return self.action.to_api_dict()

    def step_id(self, index: int) -> str:
        """The id given, or "<index>-<type>" (e.g. "0-rollback") for a step at `index`."""
        return self.id if self.id is not None else f"{index}-{self.action_type}"


def action_type_of(action: AnyAction) -> ActionType:
    return _TYPE_OF_CLASS[type(action)]


def _reject_duplicate_step_ids(steps: tuple[ActionStep, ...]) -> tuple[ActionStep, ...]:
    given_ids = [step.id for step in steps if step.id is not None]
    if len(given_ids) != len(set(given_ids)):
        raise ValueError(STEP_IDS_NOT_UNIQUE)
    return steps


# An ordered ladder of steps, as both an Incident's spec.actions and a policy rule's actions.
ActionSteps = Annotated[
    tuple[ActionStep, ...],
    Field(min_length=1, max_length=MAX_STEPS),
    AfterValidator(_reject_duplicate_step_ids),
]
