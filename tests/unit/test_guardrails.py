"""Guardrails: each returns why the operator must not act, or None."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mitigator.domain import (
    ALWAYS_PROTECTED,
    ALWAYS_PROTECTED_NAMESPACES,
    cap_replicas,
    check_action_rate,
    check_approval,
    check_concurrency,
    check_cooldown,
    check_protected_namespace,
    cooldown_refusal,
    hourly_cap_refusal,
    scale_target,
)
from mitigator.models import ActionType, ScaleAction
from mitigator.models.evidence import AppliedRecord
from tests.unit.factories import NOW

MINUTE = timedelta(minutes=1)


@pytest.mark.parametrize("namespace", sorted(ALWAYS_PROTECTED_NAMESPACES))
def test_control_plane_namespaces_are_always_protected(namespace: str) -> None:
    refusal = check_protected_namespace(namespace, protected_namespaces=())
    assert refusal is not None and "always protected" in refusal
    assert ALWAYS_PROTECTED == ALWAYS_PROTECTED_NAMESPACES


def test_configured_namespaces_and_globs() -> None:
    assert check_protected_namespace("monitoring", protected_namespaces=["monitoring"])
    assert check_protected_namespace("team-payments", protected_namespaces=["team-*"])
    assert check_protected_namespace("luminamind", protected_namespaces=["monitoring"]) is None
    assert check_protected_namespace("default") is None


def test_cooldown() -> None:
    cooldown = timedelta(minutes=10)
    assert check_cooldown(last_mitigation_at=None, cooldown=cooldown, now=NOW) is None
    refusal = check_cooldown(last_mitigation_at=NOW - 3 * MINUTE, cooldown=cooldown, now=NOW)
    assert refusal is not None
    assert "mitigated 3m ago and the cooldown is 10m" in refusal
    assert (NOW + 7 * MINUTE).isoformat() in refusal
    assert check_cooldown(last_mitigation_at=NOW - 10 * MINUTE, cooldown=cooldown, now=NOW) is None
    # Clock skew: a mitigation "in the future" is just now.
    assert check_cooldown(last_mitigation_at=NOW + MINUTE, cooldown=cooldown, now=NOW)
    assert check_cooldown(last_mitigation_at=NOW, cooldown=timedelta(), now=NOW) is None


def test_action_rate() -> None:
    recent = [NOW - k * 10 * MINUTE for k in range(5)]  # 0..40 minutes ago
    assert check_action_rate(recent, max_actions_per_hour=6, now=NOW) is None
    refusal = check_action_rate(recent, max_actions_per_hour=5, now=NOW)
    assert refusal == (
        "5 actions were applied in the last hour and the limit is 5 (guardrails.maxActionsPerHour)"
    )
    old = [NOW - 61 * MINUTE, NOW - 2 * timedelta(hours=1)]
    assert check_action_rate(old, max_actions_per_hour=1, now=NOW) is None


def test_concurrency_counts_the_others() -> None:
    assert check_concurrency(2, max_concurrent=3) is None
    assert check_concurrency(3, max_concurrent=3) is not None


def test_approval() -> None:
    needs = [ActionType.MAINTENANCE]
    assert check_approval(ActionType.RESTART, require_approval_for=needs, approved=False) is None
    refusal = check_approval(ActionType.MAINTENANCE, require_approval_for=needs, approved=False)
    assert refusal == "maintenance needs approval: set spec.approved: true on the Incident"
    assert check_approval(ActionType.MAINTENANCE, require_approval_for=needs, approved=True) is None


def _record(key: str, minutes_ago: float | None) -> AppliedRecord:
    at = None if minutes_ago is None else NOW - timedelta(minutes=minutes_ago)
    return AppliedRecord(key=key, action_type="scale", at=at)


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


def test_cap_replicas() -> None:
    assert cap_replicas(5, 20).replicas == 5 and not cap_replicas(5, 20).capped
    capped = cap_replicas(30, 20)
    assert (capped.replicas, capped.requested, capped.limit, capped.capped) == (20, 30, 20, True)
    with pytest.raises(ValueError):
        cap_replicas(-1, 20)


@pytest.mark.parametrize(
    ("current", "scale", "max_replicas", "replicas", "capped"),
    [
        (3, ScaleAction(increment=2), 20, 5, False),
        (3, ScaleAction(increment=2, max_replicas=4), 20, 4, True),
        (3, ScaleAction(increment=2, max_replicas=40), 4, 4, True),
        (3, ScaleAction(replicas=10), 8, 8, True),
        (6, ScaleAction(replicas=3), 20, 3, False),  # an absolute count may scale down
        (12, ScaleAction(increment=2), 10, 12, True),  # an increment never does
    ],
)
def test_scale_target(
    current: int, scale: ScaleAction, max_replicas: int, replicas: int, capped: bool
) -> None:
    result = scale_target(current, scale, max_replicas=max_replicas)
    assert (result.replicas, result.capped) == (replicas, capped)


@given(
    st.integers(min_value=0, max_value=100),
    st.integers(min_value=1, max_value=50),
    st.one_of(st.none(), st.integers(min_value=1, max_value=50)),
    st.integers(min_value=1, max_value=50),
)
def test_an_increment_never_exceeds_the_caps_nor_scales_down(
    current: int, increment: int, step_max: int | None, policy_max: int
) -> None:
    result = scale_target(
        current,
        ScaleAction(increment=increment, max_replicas=step_max),
        max_replicas=policy_max,
    )
    assert result.replicas >= current
    limit = min(policy_max, step_max or policy_max)
    assert result.replicas <= max(limit, current)
    assert result.capped == (result.replicas < current + increment)
