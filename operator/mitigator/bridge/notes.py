"""Why an alert did not become (part of) an Incident: the notes the bridge's answers list and
its metrics count. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mitigator.models.base import JsonObject


class Reason(StrEnum):
    """Stable codes, for response bodies and metric labels."""

    # Unmapped: the alert names no target. Answered with 200, counted, listed in the body.
    NO_NAMESPACE_LABEL = "no_namespace_label"
    NO_TARGET_LABEL = "no_target_label"
    # Rejected: the alert names a target the bridge refuses.
    INVALID_NAMESPACE = "invalid_namespace"
    INVALID_TARGET = "invalid_target"
    NAMESPACE_NOT_ALLOWED = "namespace_not_allowed"
    INVALID_ALERT = "invalid_alert"
    UNKNOWN_NAMESPACE = "unknown_namespace"  # the API server says so
    REFUSED = "refused_by_api_server"
    # Skipped: resolved alerts of a group that has no open Incident; nothing to do.
    NO_OPEN_INCIDENT = "no_open_incident"


@dataclass(frozen=True)
class AlertNote:
    """An alert that did not become part of an Incident, and why."""

    fingerprint: str
    alertname: str | None
    reason: Reason
    message: str
    namespace: str | None = None
    target: str | None = None

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
