"""Why an alert did not become (part of) an Incident: the notes the bridge's answers list and
its metrics count; and `clip`, which keeps what a sender wrote from being echoed in full into
an answer or a log line. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mitigator.models.base import JsonObject

# A string the sender chose (an alertname, a label, a namespace) is shown up to this many
# characters; a message composed of such strings up to MAX_MESSAGE.
MAX_SHOWN = 200
MAX_MESSAGE = 1000


def clip(value: str, limit: int = MAX_SHOWN) -> str:
    """`value` as it may be shown: whole when short, else its first `limit` characters, an
    ellipsis and the original length, e.g. ``AAAA… (5000 characters)``."""
    if len(value) <= limit:
        return value
    return f"{value[:limit]}… ({len(value)} characters)"


def show(value: str) -> str:
    """A quoted `clip`, for messages: ``'web_app'``."""
    return repr(clip(value))


class Reason(StrEnum):
    """Stable codes, for response bodies and metric labels."""

    # Unmapped: the alert names no target. Answered with 200, counted, listed in the body.
    NO_NAMESPACE_LABEL = "no_namespace_label"
    NO_TARGET_LABEL = "no_target_label"
    # Unmapped: the alert names a pod, and its owner chain leads to no Deployment.
    UNKNOWN_POD = "unknown_pod"
    POD_NOT_IN_DEPLOYMENT = "pod_not_in_deployment"
    POD_LOOKUP_FAILED = "pod_lookup_failed"
    # Rejected: the alert names a target the bridge refuses.
    INVALID_NAMESPACE = "invalid_namespace"
    INVALID_TARGET = "invalid_target"
    PROTECTED_NAMESPACE = "protected_namespace"
    NAMESPACE_NOT_ALLOWED = "namespace_not_allowed"
    INVALID_ALERT = "invalid_alert"
    UNKNOWN_NAMESPACE = "unknown_namespace"  # the API server says so
    REFUSED = "refused_by_api_server"
    TOO_LARGE = "incident_too_large"  # the API server refuses to store that much
    # Skipped: resolved alerts of a group that has no open Incident; nothing to do.
    NO_OPEN_INCIDENT = "no_open_incident"


UNMAPPED = frozenset(
    {
        Reason.NO_NAMESPACE_LABEL,
        Reason.NO_TARGET_LABEL,
        Reason.UNKNOWN_POD,
        Reason.POD_NOT_IN_DEPLOYMENT,
        Reason.POD_LOOKUP_FAILED,
    }
)


@dataclass(frozen=True)
class AlertNote:
    """An alert that did not become part of an Incident, and why. What the sender wrote is
    clipped here, once, so that neither the answer nor the log repeats it in full."""

    fingerprint: str
    alertname: str | None
    reason: Reason
    message: str
    namespace: str | None = None
    target: str | None = None

    def __post_init__(self) -> None:
        for name in ("fingerprint", "alertname", "namespace", "target"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, clip(value))
        object.__setattr__(self, "message", clip(self.message, MAX_MESSAGE))

    def to_json(self) -> JsonObject:
        body: JsonObject = {
            "fingerprint": self.fingerprint,
            "alertname": self.alertname,
            "reason": self.reason.value,
            "message": self.message,
        }
        if self.namespace is not None:
            body["namespace"] = self.namespace
        if self.target is not None:
            body["target"] = self.target
        return body
