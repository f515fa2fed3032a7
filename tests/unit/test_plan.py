"""Planning: which rule, which ladder, which ids."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from mitigator.domain.plan import incident_alertname, plan_steps, select_rule
from mitigator.models import ActionType, Severity
from tests.unit.factories import incident, policy

RESTART: list[dict[str, Any]] = [{"restart": {}}]


def _rule(name: str, *, actions: list[dict[str, Any]] | None = None, **when: Any) -> dict[str, Any]:
    return {"name": name, "when": when, "actions": actions or RESTART}


def _select(rules: list[dict[str, Any]], **kwargs: Any) -> str | None:
    arguments: dict[str, Any] = {
        "severity": Severity.P1,
        "alertname": None,
        "last_rollout_age": None,
    } | kwargs
    chosen = select_rule(policy(rules=rules), **arguments)
    return chosen.name if chosen else None


def test_the_first_matching_rule_wins() -> None:
    rules = [_rule("p0-only", severities=["P0"]), _rule("any"), _rule("also-any")]
    assert _select(rules, severity=Severity.P1) == "any"
    assert _select(rules, severity=Severity.P0) == "p0-only"


def test_empty_lists_match_anything_unknown_included() -> None:
    assert _select([_rule("any")], severity=Severity.UNKNOWN, alertname=None) == "any"


def test_severities() -> None:
    rules = [_rule("unknown", severities=["Unknown"])]
    assert _select(rules, severity=Severity.UNKNOWN) == "unknown"
    assert _select(rules, severity=Severity.P3) is None


def test_alertnames_need_an_alertname() -> None:
    rules = [_rule("latency", alertnames=["HighLatency", "SlowTools"])]
    assert _select(rules, alertname="SlowTools") == "latency"
    assert _select(rules, alertname="HighErrorRate") is None
    assert _select(rules, alertname=None) is None


@pytest.mark.parametrize(
    ("age", "matches"),
    [
        (None, False),
        (timedelta(minutes=5), True),
        (timedelta(minutes=30), True),
        (timedelta(minutes=30, seconds=1), False),
        (timedelta(seconds=-10), True),
    ],
)
def test_recent_rollout_needs_a_known_recent_age(age: timedelta | None, matches: bool) -> None:
    rules = [_rule("bad-rollout", recentRolloutWithin="30m")]
    assert (_select(rules, last_rollout_age=age) == "bad-rollout") is matches


def test_every_condition_must_hold() -> None:
    rules = [_rule("both", severities=["P0"], alertnames=["ServiceDown"], recentRolloutWithin="1h")]
    young = timedelta(minutes=1)
    assert _select(rules, severity=Severity.P0, alertname="ServiceDown", last_rollout_age=young)
    assert not _select(rules, severity=Severity.P1, alertname="ServiceDown", last_rollout_age=young)
    assert not _select(rules, severity=Severity.P0, alertname="Other", last_rollout_age=young)
    assert not _select(rules, severity=Severity.P0, alertname="ServiceDown", last_rollout_age=None)


def test_plan_from_the_matching_rule_with_stable_ids() -> None:
    spec = policy(
        rules=[
            _rule(
                "ladder",
                actions=[
                    {"rollback": {}},
                    {"id": "add-capacity", "scale": {"increment": 2}},
                    {"scale": {"increment": 2}},
                ],
            )
        ]
    )
    plan = plan_steps(incident(), spec, severity=Severity.P1, last_rollout_age=None)
    assert (plan.source, plan.rule, plan.dry_run) == ("policy", "ladder", False)
    assert [step.id for step in plan.steps] == ["0-rollback", "add-capacity", "2-scale"]
    # Planning again gives the same ids: they name actions on the target (exactly once).
    again = plan_steps(incident(), spec, severity=Severity.P1, last_rollout_age=None)
    assert again == plan


def test_explicit_actions_override_the_policy() -> None:
    spec = policy(guardrails={"dryRun": True})
    explicit = incident(
        actions=[
            {"setEnv": {"env": {"DISABLE_WEB_SEARCH": "true"}}},
            {"maintenance": {"service": "web", "backendSelector": {"app": "down"}}},
        ]
    )
    plan = plan_steps(explicit, spec, severity=Severity.P1, last_rollout_age=None)
    assert (plan.source, plan.rule) == ("incident", None)
    assert [step.action_type for step in plan.steps] == [ActionType.SET_ENV, ActionType.MAINTENANCE]
    # The policy still governs explicit steps: its dry run applies to them.
    assert plan.dry_run


def test_explicit_actions_without_a_policy() -> None:
    plan = plan_steps(incident(actions=RESTART), None, severity=Severity.P3, last_rollout_age=None)
    assert [step.id for step in plan.steps] == ["0-restart"]
    assert not plan.dry_run


def test_no_rule_no_policy_no_plan() -> None:
    only_p0 = policy(rules=[_rule("p0", severities=["P0"])])
    plan = plan_steps(incident(), only_p0, severity=Severity.P2, last_rollout_age=None)
    assert plan.is_empty and plan.source == "none" and plan.rule is None
    assert plan_steps(incident(), None, severity=Severity.P0, last_rollout_age=None).is_empty


@pytest.mark.parametrize(
    ("incident_dry_run", "policy_dry_run", "dry_run"),
    [(False, False, False), (True, False, True), (False, True, True), (True, True, True)],
)
def test_dry_run_from_either_side(
    incident_dry_run: bool, policy_dry_run: bool, dry_run: bool
) -> None:
    plan = plan_steps(
        incident(dryRun=incident_dry_run),
        policy(guardrails={"dryRun": policy_dry_run}),
        severity=Severity.P1,
        last_rollout_age=None,
    )
    assert plan.dry_run is dry_run


def test_rules_match_on_the_incidents_alertname() -> None:
    spec = policy(rules=[_rule("memory", alertnames=["HighMemoryUsage"])])
    from_source = incident(source={"type": "alertmanager", "alertname": "HighMemoryUsage"})
    from_labels = incident(source={"labels": {"alertname": "HighMemoryUsage"}})
    for case in (from_source, from_labels):
        assert incident_alertname(case) == "HighMemoryUsage"
        assert plan_steps(case, spec, severity=Severity.P2, last_rollout_age=None).rule == "memory"
    assert incident_alertname(incident()) is None
