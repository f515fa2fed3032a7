"""Guardrails: each returns why the operator must not act, or None."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mitigator.domain.guardrails import (
    ALWAYS_PROTECTED_NAMESPACES,
    check_approval,
    check_protected_namespace,
    cooldown_refusal,
    hourly_cap_refusal,
    slot_refusal,
    target_wait,
)
from mitigator.domain.selection import PolicyCandidate
from mitigator.models import ActionType
from mitigator.models.evidence import Contender
from mitigator.models.execution import AppliedRecord
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


def _incident(n: int, *, holds: bool = False, waiting: bool = True) -> Contender:
    return Contender(f"uid-{n}", f"inc-{n:02d}", NOW + n * MINUTE, holds, waiting and not holds)


def test_slots_count_holders_not_waiters_and_go_first_come_first_served() -> None:
    ten = [_incident(n) for n in range(10)]
    # Nobody holds a slot: the three detected first may act, the others wait their turn.
    allowed = [
        me.uid
        for me in ten
        if slot_refusal(me, [o for o in ten if o is not me], granted=(), limit=3) is None
    ]
    assert allowed == ["uid-0", "uid-1", "uid-2"]
    # Three hold slots: nobody else, whatever their order.
    holding = [_incident(n, holds=n < 3) for n in range(10)]
    refusal = slot_refusal(holding[3], holding[:3] + holding[4:], granted=(), limit=3)
    assert refusal is not None and "3 incidents are being mitigated" in refusal
    # They finish (they leave the live incidents): the seven waiting ones are served in turn
    # instead of counting each other forever.
    waiting = holding[3:]
    served = [
        me.uid
        for me in waiting
        if slot_refusal(me, [o for o in waiting if o is not me], granted=(), limit=3) is None
    ]
    assert served == ["uid-3", "uid-4", "uid-5"]
    # A slot granted but not yet visible as held counts as held.
    refusal = slot_refusal(waiting[0], waiting[1:], granted={"uid-4", "uid-5", "uid-6"}, limit=3)
    assert refusal is not None


def test_an_incident_holding_a_slot_keeps_it() -> None:
    me = _incident(9, holds=True)
    others = [_incident(n, holds=True) for n in range(3)]
    assert slot_refusal(me, others, granted=(), limit=3) is None


@given(st.lists(st.booleans(), min_size=1, max_size=12), st.integers(min_value=1, max_value=5))
def test_never_more_than_the_limit_act_at_once(holds: list[bool], limit: int) -> None:
    contenders = [_incident(n, holds=held) for n, held in enumerate(holds)]
    granted: set[str] = set()
    for me in contenders:  # each asks in turn, as ticks do
        others = [o for o in contenders if o is not me]
        if slot_refusal(me, others, granted=granted, limit=limit) is None:
            granted.add(me.uid)
    acting = {c.uid for c in contenders if c.holds_claim} | granted
    assert len(acting) <= max(limit, sum(holds))


def test_target_wait_from_the_named_policy_or_the_longest() -> None:
    from mitigator.models import Guardrails, PolicySpec

    def candidate(name: str, wait: str) -> PolicyCandidate:
        spec = PolicySpec.model_validate(
            {
                "selector": {"matchLabels": {"app": name}},
                "rules": [{"name": "r", "actions": [{"restart": {}}]}],
                "guardrails": {"targetWait": wait},
            }
        )
        return PolicyCandidate(name, spec)

    policies = [candidate("a", "1m"), candidate("b", "5m"), PolicyCandidate("bad", None, "x")]
    assert target_wait(policies, policy_ref=None) == timedelta(minutes=5)
    assert target_wait(policies, policy_ref="a") == timedelta(minutes=1)
    assert target_wait([], policy_ref=None) == Guardrails().target_wait


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
