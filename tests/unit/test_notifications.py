"""Escalation notifications beyond the matrix: retries with exponential backoff, the resolved
message, the PagerDuty Events v2 and Slack-compatible payloads, and delivery errors that never
quote the (secret) URL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from localkube.processes import free_port
from mitigator.actions.webhook import Notice, pagerduty_payload, post_webhook, slack_payload
from mitigator.domain.escalation import (
    MAX_ATTEMPTS,
    record_notification,
    record_resolve,
    resolve_due,
    resolve_pending,
    retry_at,
    settled_levels,
)
from mitigator.models import EscalationLevel
from tests.unit.factories import NOW

PAGER = EscalationLevel.model_validate(
    {
        "after": "0s",
        "level": 1,
        "name": "on-call",
        "receiver": {
            "name": "pd",
            "format": "pagerduty",
            "routingKeySecretRef": {"name": "pd", "key": "routing-key"},
        },
    }
)
QUIET = EscalationLevel.model_validate(
    {
        "after": "1h",
        "level": 2,
        "receiver": {
            "name": "lead-slack",
            "urlSecretRef": {"name": "slack", "key": "url"},
            "sendResolved": False,
        },
    }
)


def _notice(kind: str = "trigger") -> Notice:
    return Notice(
        kind=kind,  # type: ignore[arg-type]
        namespace="shop",
        incident="errors",
        uid="1234",
        target="web",
        severity="P0",
        phase="Escalated",
        message="no step could be applied",
        level=1,
        level_name="on-call",
        detected_at=NOW.isoformat(),
    )


def test_retries_back_off_exponentially_then_give_up() -> None:
    assert [retry_at(n, NOW) - NOW for n in range(1, 6)] == [
        timedelta(seconds=s) for s in (5, 10, 20, 40, 80)
    ]
    status = record_notification(None, PAGER, now=NOW, delivered=False, error="HTTP 500")
    assert settled_levels(status, now=NOW + timedelta(seconds=4)) == {1}, "backing off"
    assert settled_levels(status, now=NOW + timedelta(seconds=5)) == set(), "retry due"
    for _ in range(MAX_ATTEMPTS - 1):
        status = record_notification(status, PAGER, now=NOW, delivered=False, error="HTTP 500")
    assert settled_levels(status, now=NOW + timedelta(days=1)) == {1}, "given up"
    [notice] = status.levels or ()
    assert (notice.receiver, notice.webhook, notice.attempts) == ("pd", None, MAX_ATTEMPTS)


def test_resolved_message_goes_only_to_levels_that_were_told() -> None:
    status = record_notification(None, PAGER, now=NOW, delivered=True)
    status = record_notification(status, QUIET, now=NOW, delivered=True)
    assert resolve_due([PAGER, QUIET], status, now=NOW) == (PAGER,), "QUIET: sendResolved off"
    failed = record_resolve(status, PAGER, now=NOW, delivered=False, error="HTTP 502")
    assert resolve_due([PAGER], failed, now=NOW + timedelta(seconds=1)) == ()
    assert resolve_due([PAGER], failed, now=NOW + timedelta(seconds=5)) == (PAGER,)
    told = record_resolve(failed, PAGER, now=NOW, delivered=True)
    assert resolve_due([PAGER], told, now=NOW + timedelta(hours=1)) == ()
    never_told = record_notification(None, PAGER, now=NOW, delivered=False)
    assert resolve_due([PAGER], never_told, now=NOW) == ()
    # Pending while a told level that wants it has not heard (even backing off); not after.
    assert resolve_pending([PAGER, QUIET], failed)
    assert not resolve_pending([PAGER, QUIET], told)
    assert not resolve_pending([QUIET], status), "sendResolved off: nothing to wait for"


def test_pagerduty_trigger_and_resolve_share_the_dedup_key() -> None:
    trigger = pagerduty_payload(_notice("trigger"), routing_key="rk")
    resolve = pagerduty_payload(_notice("resolve"), routing_key="rk")
    assert trigger["dedup_key"] == resolve["dedup_key"] == "mitigator-1234"
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert (
        trigger["payload"]["severity"] == "critical" and trigger["payload"]["source"] == "shop/web"
    )
    assert set(resolve) == {"routing_key", "event_action", "dedup_key"}


def test_slack_text_says_firing_or_resolved() -> None:
    assert slack_payload(_notice())["text"].startswith("[P0] Incident shop/errors")
    resolved = slack_payload(_notice("resolve"))
    assert resolved["status"] == "resolved" and "RESOLVED" in resolved["text"]


def test_a_delivery_error_never_quotes_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/services/T0/B0/s3cr3t-token"
    delivery = post_webhook(url, {"text": "x"}, timeout_seconds=1)
    assert not delivery.delivered
    assert delivery.error == "request failed: ConnectionError"


def test_receivers_need_their_secret_and_levels_one_destination() -> None:
    with pytest.raises(ValidationError, match="a pagerduty receiver needs routingKeySecretRef"):
        EscalationLevel.model_validate(
            {"after": "0s", "level": 1, "receiver": {"name": "pd", "format": "pagerduty"}}
        )
    with pytest.raises(ValidationError, match="a slack receiver needs urlSecretRef"):
        EscalationLevel.model_validate({"after": "0s", "level": 1, "receiver": {"name": "s"}})
    with pytest.raises(ValidationError, match="either webhook or receiver"):
        EscalationLevel.model_validate(
            {
                "after": "0s",
                "level": 1,
                "webhook": "https://hooks.example/x",
                "receiver": {"name": "s", "urlSecretRef": {"name": "a", "key": "b"}},
            }
        )
