"""Escalation notifications: a JSON POST per level, Slack-compatible (its ``text`` field) or
PagerDuty Events API v2 (``trigger``, then ``resolve`` with the same ``dedup_key``).

A failing webhook is an answer (recorded, retried with backoff on a later tick), never an
exception that could stop mitigation. The URL and keys are secrets: an error names only the
exception's class or the HTTP status, never the URL (requests' messages quote it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import requests

from mitigator.observability.logs import redact

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
NoticeKind = Literal["trigger", "resolve"]
_PAGERDUTY_SEVERITY = {"P0": "critical", "P1": "error", "P2": "warning", "P3": "info"}


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class Notice:
    """What to tell a level, with no secret in it."""

    kind: NoticeKind
    namespace: str
    incident: str
    uid: str
    target: str
    severity: str | None
    phase: str | None
    message: str | None
    level: int
    level_name: str | None
    detected_at: str | None

    @property
    def text(self) -> str:
        where = f"{self.namespace}/{self.incident}"
        who = f" {self.level_name}" if self.level_name else ""
        if self.kind == "resolve":
            return (
                f"[{self.severity or '?'}] RESOLVED: Incident {where} on Deployment "
                f"{self.target}: {self.message or ''} (escalation level {self.level}{who})"
            )
        return (
            f"[{self.severity or '?'}] Incident {where} on Deployment {self.target}: "
            f"{self.phase} - {self.message or ''} (escalation level {self.level}{who})"
        )

    @property
    def dedup_key(self) -> str:
        """One PagerDuty incident per Incident: the resolve closes what the trigger opened."""
        return f"mitigator-{self.uid}"


def slack_payload(notice: Notice) -> dict[str, Any]:
    return {
        "text": notice.text,
        "status": "resolved" if notice.kind == "resolve" else "firing",
        "incident": {"namespace": notice.namespace, "name": notice.incident, "uid": notice.uid},
        "target": notice.target,
        "severity": notice.severity,
        "phase": notice.phase,
        "message": notice.message,
        "level": notice.level,
        "levelName": notice.level_name,
        "detectedAt": notice.detected_at,
    }


def pagerduty_payload(notice: Notice, *, routing_key: str) -> dict[str, Any]:
    """An Events API v2 event; a resolve carries only the routing and dedup keys."""
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": notice.kind,
        "dedup_key": notice.dedup_key,
    }
    if notice.kind == "trigger":
        event["payload"] = {
            "summary": notice.text[:1024],
            "source": f"{notice.namespace}/{notice.target}",
            "severity": _PAGERDUTY_SEVERITY.get(notice.severity or "", "error"),
            "component": notice.target,
            "group": notice.namespace,
            "class": "mitigator-incident",
            "custom_details": {
                "incident": f"{notice.namespace}/{notice.incident}",
                "phase": notice.phase,
                "message": notice.message,
                "level": notice.level,
                "levelName": notice.level_name,
                "detectedAt": notice.detected_at,
            },
        }
    return event


def post_webhook(url: str, payload: dict[str, Any], *, timeout_seconds: float = 3.0) -> Delivery:
    try:
        response = requests.post(url, json=payload, timeout=timeout_seconds)
    except requests.RequestException as exc:
        return Delivery(False, f"request failed: {exc.__class__.__name__}")
    if response.status_code >= 300:
        reply = redact(response.text[:120].replace(url, "[URL]"))
        return Delivery(False, f"HTTP {response.status_code}: {reply}")
    return Delivery(True)
