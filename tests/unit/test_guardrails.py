"""Guardrails: each returns why the operator must not act, or None."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mitigator.domain.guardrails import (
    ALWAYS_PROTECTED_NAMESPACES,
    check_approval,
    check_concurrency,
    check_protected_namespace,
    cooldown_refusal,
    hourly_cap_refusal,
)
from mitigator.models import ActionType
from mitigator.models.evidence import AppliedRecord
from tests.unit.factories import NOW

MINUTE = timedelta(minutes=1)


@pytest.mark.parametrize("namespace", sorted(ALWAYS_PROTECTED_NAMESPACES))
def test_control_plane_namespaces_are_always_protected(namespace: str) -> None:
    refusal = check_protected_namespace(namespace, protected_namespaces=())
    assert refusal is not None and "always protected" in refusal


def test_configured_namespaces_and_globs() -> None:
    assert check_protected_namespace("monitoring", protected_namespaces=["monitoring"])
    assert check_protected_namespace("team-payments", protected_namespaces=["team-*"])
    assert check_protected_namespace("luminamind", protected_namespaces=["monitoring"]) is None
    assert check_protected_namespace("default") is None


def _record(key: str, minutes_ago: float | None) -> AppliedRecord:
    at = None if minutes_ago is None else NOW - timedelta(minutes=minutes_ago)
    return AppliedRecord(key=key, action_type="scale", at=at)


def _mitigated(minutes_ago: float) -> list[AppliedRecord]:
    return [_record("other-incident/0-rollback", minutes_ago)]


def test_cooldown() -> None:
    cooldown = timedelta(minutes=10)

    def refusal_after(minutes_ago: float, cooldown: timedelta = cooldown) -> str | None:
        return cooldown_refusal(
            _mitigated(minutes_ago), incident_uid="this", cooldown=cooldown, now=NOW
        )

    assert cooldown_refusal([], incident_uid="this", cooldown=cooldown, now=NOW) is None
    refusal = refusal_after(3)
    assert refusal is not None
    assert "mitigated 3m ago and the cooldown is 10m" in refusal
    assert (NOW + 7 * MINUTE).isoformat() in refusal
    assert refusal_after(10) is None
    # Clock skew: a mitigation "in the future" is just now.
    assert refusal_after(-1)
    assert refusal_after(0, cooldown=timedelta()) is None


def test_action_rate() -> None:
    recent = [_record(f"i/{k}-scale", k * 10) for k in range(5)]  # 0..40 minutes ago
    assert hourly_cap_refusal(recent, limit=6, now=NOW) is None
    refusal = hourly_cap_refusal(recent, limit=5, now=NOW)
    assert refusal == (
        "5 actions were applied in the last hour and the limit is 5 (guardrails.maxActionsPerHour)"
    )
    old = [_record("i/0-scale", 61), _record("i/1-scale", 120)]
    assert hourly_cap_refusal(old, limit=1, now=NOW) is None


def test_concurrency_counts_the_others() -> None:
    assert check_concurrency(2, max_concurrent=3) is None
    assert check_concurrency(3, max_concurrent=3) is not None


def test_approval() -> None:
    needs = [ActionType.MAINTENANCE]
    assert check_approval(ActionType.RESTART, require_approval_for=needs, approved=False) is None
    refusal = check_approval(ActionType.MAINTENANCE, require_approval_for=needs, approved=False)
    assert refusal == "maintenance needs approval: set spec.approved: true on the Incident"
    assert check_approval(ActionType.MAINTENANCE, require_approval_for=needs, approved=True) is None


def test_cooldown_over_the_targets_records() -> None:
    applied = [
        _record("other-incident/0-rollback", 20),
        _record("other-incident/1-scale", 4),
        _record("other-incident/1-scale/revert", 1),
        _record("this-incident/0-restart", 1),
        _record("undated/0-restart", None),
    ]
    refusal = cooldown_refusal(
        applied, incident_uid="this-incident", cooldown=timedelta(minutes=10), now=NOW
    )
    # The other incident's scale 4 minutes ago counts; this incident's own step and the revert
    # do not.
    assert refusal is not None and "mitigated 4m ago" in refusal
    assert (
        cooldown_refusal(applied, incident_uid="this-incident", cooldown=3 * MINUTE, now=NOW)
        is None
    )
    assert cooldown_refusal([], incident_uid="x", cooldown=MINUTE, now=NOW) is None


def test_hourly_cap_over_the_targets_records() -> None:
    applied = [_record(f"i/{n}-scale", n * 5) for n in range(4)] + [_record("i/0-scale/revert", 1)]
    assert hourly_cap_refusal(applied, limit=5, now=NOW) is None
    assert hourly_cap_refusal(applied, limit=4, now=NOW) is not None
