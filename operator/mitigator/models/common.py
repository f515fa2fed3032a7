"""Enumerations, name formats and durations shared by the Incident and MitigationPolicy models."""

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal, TypeVar, get_args

from pydantic import AwareDatetime, BeforeValidator, PlainSerializer, WithJsonSchema


class Severity(StrEnum):
    """The guide's severity levels, plus Unknown for evidence too incomplete to decide."""

    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    UNKNOWN = "Unknown"

    @property
    def urgency(self) -> int:
        """How urgent the severity is, higher is more urgent: P3 < P2 < Unknown < P1 < P0.

        Unknown sits above P2 because missing evidence is never healthy: an incident whose
        evidence is incomplete deserves more attention than one proven to be merely degraded,
        but less than one proven to be a major incident.
        """
        return _URGENCY[self]

    @property
    def is_known(self) -> bool:
        return self is not Severity.UNKNOWN


_URGENCY = {
    Severity.P3: 0,
    Severity.P2: 1,
    Severity.UNKNOWN: 2,
    Severity.P1: 3,
    Severity.P0: 4,
}

# What a person may write in an Incident's spec: Unknown is a conclusion, not a request.
KnownSeverity = Literal[Severity.P0, Severity.P1, Severity.P2, Severity.P3]


class Phase(StrEnum):
    """Where an Incident is in its life: Triaging → (AwaitingApproval) → Mitigating → Verifying
    → Resolved | Escalated | Failed."""

    TRIAGING = "Triaging"
    AWAITING_APPROVAL = "AwaitingApproval"
    MITIGATING = "Mitigating"
    VERIFYING = "Verifying"
    RESOLVED = "Resolved"
    ESCALATED = "Escalated"
    FAILED = "Failed"
    SUPPRESSED = "Suppressed"

    @property
    def is_terminal(self) -> bool:
        """Resolved, Failed and Suppressed (another Incident mitigates the target) are final;
        Escalated is not, since people can still resolve it."""
        return self in (Phase.RESOLVED, Phase.FAILED, Phase.SUPPRESSED)

    @property
    def advances_by_itself(self) -> bool:
        """The operator moves the incident on at every tick; an Escalated one waits for people."""
        return not self.is_terminal and self is not Phase.ESCALATED

    @property
    def is_mitigating(self) -> bool:
        """An action has been applied and the outcome is not settled yet."""
        return self in (Phase.MITIGATING, Phase.VERIFYING)

    @classmethod
    def of(cls, value: str | None) -> "Phase":
        """The phase a status names; a new incident (no phase yet) is Triaging."""
        return cls(value) if value else cls.TRIAGING


class ActionType(StrEnum):
    """The mitigations the operator can apply to a Deployment (the keys of an action step)."""

    ROLLBACK = "rollback"
    SCALE = "scale"
    RESTART = "restart"
    SET_ENV = "setEnv"
    MAINTENANCE = "maintenance"
    ISOLATE = "isolate"


# The mitigations that can be undone once the target is healthy again: a rollback and a restart
# are fixes, not temporary measures, so there is nothing to revert.
RevertibleActionType = Literal[ActionType.SCALE, ActionType.SET_ENV, ActionType.MAINTENANCE]
REVERTIBLE_ACTION_TYPES: frozenset[ActionType] = frozenset(get_args(RevertibleActionType))
# Undone on every resolve, whatever revertOnResolve says: isolation contains an incident for
# forensics; it is never the fix, and pods must not stay cut off once people close it.
ALWAYS_REVERTED_ACTION_TYPES: frozenset[ActionType] = frozenset({ActionType.ISOLATE})


class ActionState(StrEnum):
    PENDING = "Pending"
    APPLIED = "Applied"
    SKIPPED = "Skipped"
    FAILED = "Failed"
    DRY_RUN = "DryRun"
    REVERTED = "Reverted"
    # A guardrail decided on the target as read in the write (cooldown, hourly cap, claim).
    REFUSED = "Refused"


# Name formats, written so that Python (pydantic's Rust regex) and the API server (Go RE2)
# read them the same way: no lookarounds, `$` means end of text in both.
DNS1123_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS1123_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Service names are DNS-1035 labels: they must start with a letter.
DNS1035_LABEL_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
# A step id starts with a letter, so it can never collide with a generated id, which starts with
# the step's index ("0-rollback").
STEP_ID_PATTERN = DNS1035_LABEL_PATTERN
ENV_VAR_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
HTTP_URL_PATTERN = r"^https?://[^\s]+$"
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"

DURATION_PATTERN = r"^([0-9]+(ms|s|m|h))+$"
DURATION_MAX_LENGTH = 32
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h)")
_DURATION_WHOLE = re.compile(r"(?:[0-9]+(?:ms|s|m|h))+")
_UNIT = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
}


def parse_duration(text: str) -> timedelta:
    """Parse a duration such as "90s", "10m", "1h30m" or "250ms" (the CRD's format)."""
    if len(text) > DURATION_MAX_LENGTH or _DURATION_WHOLE.fullmatch(text) is None:
        raise ValueError(
            f"invalid duration {text!r}: expected a sequence of <number><unit> with unit "
            "ms, s, m or h, e.g. 90s, 10m, 1h30m"
        )
    return sum(
        (int(amount) * _UNIT[unit] for amount, unit in _DURATION_PART.findall(text)),
        timedelta(),
    )


def format_duration(value: timedelta) -> str:
    """The shortest duration string `parse_duration` reads back as `value` (to the millisecond)."""
    if value < timedelta():
        raise ValueError(f"a duration cannot be negative: {value}")
    milliseconds = value // timedelta(milliseconds=1)
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    seconds, milliseconds = divmod(milliseconds, 1000)
    parts = [
        f"{amount}{unit}"
        for amount, unit in ((hours, "h"), (minutes, "m"), (seconds, "s"), (milliseconds, "ms"))
        if amount
    ]
    return "".join(parts) or "0s"


def _duration_from_wire(value: object) -> timedelta:
    if isinstance(value, timedelta):
        if value < timedelta():
            raise ValueError(f"a duration cannot be negative: {value}")
        return value
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError(f"a duration must be a string such as 90s or 1h30m, not {value!r}")


# A duration is a string on the wire and a timedelta in Python.
Duration = Annotated[
    timedelta,
    BeforeValidator(_duration_from_wire),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": DURATION_PATTERN, "maxLength": DURATION_MAX_LENGTH}
    ),
]


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a trailing Z, the way Kubernetes writes its timestamps."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_timestamp(value: str) -> datetime:
    """An RFC 3339 timestamp as Kubernetes writes it (a trailing Z for UTC)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# What the API server's `format: date-time` accepts: an RFC 3339 date-time with a time zone.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})",
    re.IGNORECASE,
)


def _timestamp_from_wire(value: object) -> object:
    # pydantic alone would also read a number, or a numeric string, as Unix time.
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _RFC3339.fullmatch(value):
        return value.upper()
    raise ValueError(f"a timestamp must be an RFC 3339 date-time with a time zone, not {value!r}")


# A date-time string on the wire (RFC 3339, with a time zone), an aware datetime in Python.
Timestamp = Annotated[AwareDatetime, BeforeValidator(_timestamp_from_wire)]

_Item = TypeVar("_Item")


def reject_duplicates(values: tuple[_Item, ...]) -> tuple[_Item, ...]:
    """Mirror of `x-kubernetes-list-type: set`: the API server refuses repeated items."""
    seen: list[_Item] = []
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate value {value!r}")
        seen.append(value)
    return values
