"""Alertmanager's webhook payload (version "4"), parsed strictly from the request body.

Pure: no I/O, no aiohttp, no kubernetes. `parse_payload` either returns a `WebhookPayload` or
raises `PayloadError`, whatever the bytes: malformed JSON (including invalid UTF-8, NaN, or
nesting too deep for the decoder) is `malformed_json`, well-formed JSON that is not an
Alertmanager payload is `invalid_payload`. Both become a 400 with the reason in the body.

"Strict enough": the fields Alertmanager always sends and the bridge relies on are required
and type-checked without coercion (a label value 1 is not "1", version 4 is not "4"); fields
the bridge does not use, and fields a newer Alertmanager may add, are ignored.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
)

from mitigator.bridge.notes import clip
from mitigator.models import describe_validation_error

SUPPORTED_VERSION = "4"
# The Incident CRD's limits (spec.source.fingerprint, spec.source.groupKey).
MAX_FINGERPRINT_LENGTH = 128
MAX_GROUP_KEY_LENGTH = 1024
# How many problems a 400 lists; the rest are counted, not spelled out.
_MAX_PROBLEMS = 5

MALFORMED_JSON = "malformed_json"
INVALID_PAYLOAD = "invalid_payload"


class PayloadError(ValueError):
    """The body is not an Alertmanager webhook payload; `reason` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# RFC 3339 as Alertmanager (Go's time.RFC3339Nano) writes it; datetime.fromisoformat alone
# would also take a bare date, week dates and other ISO 8601 forms.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def parse_timestamp(value: str) -> datetime | None:
    """An RFC 3339 timestamp, in UTC; None for Go's zero time (year 1), which Alertmanager
    sends as the endsAt of an alert that is still firing."""
    if not _RFC3339.fullmatch(value):
        raise ValueError("expected an RFC 3339 timestamp such as 2025-11-26T14:23:00Z")
    try:
        parsed = datetime.fromisoformat(value.upper())
        if parsed.year <= 1:
            return None
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"not a valid date and time: {exc}") from None


def _null_is_empty(value: Any) -> Any:
    # Go marshals a nil map as null.
    return {} if value is None else value


def _timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("expected an RFC 3339 timestamp string such as 2025-11-26T14:23:00Z")
    return parse_timestamp(value)


StringMap = Annotated[dict[StrictStr, StrictStr], BeforeValidator(_null_is_empty)]
# A string on the wire, a datetime in UTC (or None for "not set") once validated.
Stamp = Annotated[datetime | None, BeforeValidator(_timestamp)]
Status = Literal["firing", "resolved"]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore", populate_by_name=True)


class WebhookAlert(_Strict):
    """One alert of the group, as Alertmanager reports it."""

    status: Status
    labels: StringMap
    annotations: StringMap = Field(default_factory=dict)
    starts_at: Stamp = Field(default=None, alias="startsAt")
    ends_at: Stamp = Field(default=None, alias="endsAt")
    generator_url: StrictStr = Field(default="", alias="generatorURL")
    fingerprint: StrictStr = Field(min_length=1, max_length=MAX_FINGERPRINT_LENGTH)

    @property
    def alertname(self) -> str | None:
        return self.labels.get("alertname") or None


class WebhookPayload(_Strict):
    """An Alertmanager webhook notification: one alert group."""

    version: Literal["4"]
    group_key: StrictStr = Field(alias="groupKey", min_length=1, max_length=MAX_GROUP_KEY_LENGTH)
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")
    status: Status
    receiver: StrictStr = ""
    group_labels: StringMap = Field(default_factory=dict, alias="groupLabels")
    common_labels: StringMap = Field(default_factory=dict, alias="commonLabels")
    common_annotations: StringMap = Field(default_factory=dict, alias="commonAnnotations")
    external_url: StrictStr = Field(default="", alias="externalURL")
    alerts: list[WebhookAlert] = Field(min_length=1)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_payload(body: bytes) -> WebhookPayload:
    """The webhook payload in `body`, or `PayloadError` (and never any other exception)."""
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise PayloadError(MALFORMED_JSON, "malformed JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN, huge integers
        raise PayloadError(MALFORMED_JSON, f"malformed JSON: {_one_line(exc)}") from None
    try:
        return WebhookPayload.model_validate(data)
    except ValidationError as exc:
        raise PayloadError(
            INVALID_PAYLOAD, f"not an Alertmanager webhook payload (version 4): {_describe(exc)}"
        ) from None
    except RecursionError:  # pragma: no cover - pydantic does not recurse into ignored fields
        raise PayloadError(INVALID_PAYLOAD, "not an Alertmanager webhook payload") from None


def _describe(exc: ValidationError) -> str:
    # A problem's path can hold a label's name: what the sender wrote, clipped.
    problems = [
        clip(problem) for problem in describe_validation_error(exc, root="payload").split("; ")
    ]
    shown = "; ".join(problems[:_MAX_PROBLEMS])
    if len(problems) > _MAX_PROBLEMS:
        shown += f"; and {len(problems) - _MAX_PROBLEMS} more"
    return shown


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]
