"""Escalation webhooks: one JSON POST per level, Slack-compatible through its ``text`` field.

A failing webhook is an answer (recorded, retried on a later tick), never an exception that
could stop mitigation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    error: str | None = None


def post_webhook(url: str, payload: dict[str, Any], *, timeout_seconds: float = 3.0) -> Delivery:
    try:
        response = requests.post(url, json=payload, timeout=timeout_seconds)
    except requests.RequestException as exc:
        return Delivery(False, f"{exc.__class__.__name__}: {exc}"[:300])
    if response.status_code >= 300:
        return Delivery(False, f"HTTP {response.status_code}: {response.text[:200]}")
    return Delivery(True)
