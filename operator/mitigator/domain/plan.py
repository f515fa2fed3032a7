"""Which ladder of steps to apply to an incident, and in which order."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from mitigator.models import (
    ActionStep,
    ActionType,
    IncidentSpec,
    PolicySpec,
    Rule,
    Severity,
)

PlanSource = Literal["incident", "policy", "none"]


@dataclass(frozen=True, kw_only=True)
class PlannedStep:
    """A step of the ladder with its id settled (the given one, or "<index>-<type>")."""

    id: str
    step: ActionStep

    @property
    def action_type(self) -> ActionType:
        return self.step.action_type


@dataclass(frozen=True, kw_only=True)
class Plan:
    """The ordered ladder: each step is applied and verified before the next is tried.

    `source` says where the steps came from: the Incident's explicit spec.actions, the
    policy rule named `rule`, or nowhere (no rule matched: people must decide).
    """

    source: PlanSource
    rule: str | None
    steps: tuple[PlannedStep, ...]
    dry_run: bool

    @property
    def is_empty(self) -> bool:
        return not self.steps


def select_rule(
    policy: PolicySpec,
    *,
    severity: Severity,
    alertname: str | None,
    last_rollout_age: timedelta | None,
) -> Rule | None:
    """The first rule whose `when` matches, or None.

    An empty list matches anything (Unknown included); `recentRolloutWithin` needs a known
    rollout age no older than the window (a rollout in the "future", from clock skew, counts
    as recent).
    """
    for rule in policy.rules:
        when = rule.when
        if when.severities and severity not in when.severities:
            continue
        if when.alertnames and alertname not in when.alertnames:
            continue
        if when.recent_rollout_within is not None and (
            last_rollout_age is None or last_rollout_age > when.recent_rollout_within
        ):
            continue
        return rule
    return None


def first_step_types(incident: IncidentSpec, policy: PolicySpec | None) -> frozenset[ActionType]:
    """The types the first step of any ladder this incident may get could have (its own
    spec.actions, else any rule's), before its severity is known: what a first tick may
    read ahead for. Empty for a dry run (nothing is written, so nothing is read for it)."""
    if incident.dry_run or (policy is not None and policy.guardrails.dry_run):
        return frozenset()
    if incident.actions is not None:
        ladders = [incident.actions]
    else:
        ladders = [rule.actions for rule in policy.rules] if policy is not None else []
    return frozenset(ladder[0].action_type for ladder in ladders if ladder)


def incident_alertname(incident: IncidentSpec) -> str | None:
    """The alert name rules match on: the source's, else its `alertname` label."""
    return incident.source.alertname or incident.source.labels.get("alertname")


def plan_steps(
    incident: IncidentSpec,
    policy: PolicySpec | None,
    *,
    severity: Severity,
    last_rollout_age: timedelta | None,
) -> Plan:
    """The ladder for `incident`: its explicit spec.actions if given (they override the
    policy's plan), else the actions of the policy's first matching rule.

    The policy still applies to explicit steps: its guardrails decide whether everything is a
    dry run (and, when each step comes up, whether it needs approval).
    """
    dry_run = incident.dry_run or (policy is not None and policy.guardrails.dry_run)
    source: PlanSource
    if incident.actions is not None:
        source, rule_name, steps = "incident", None, incident.actions
    else:
        rule = (
            select_rule(
                policy,
                severity=severity,
                alertname=incident_alertname(incident),
                last_rollout_age=last_rollout_age,
            )
            if policy is not None
            else None
        )
        if rule is None:
            return Plan(source="none", rule=None, steps=(), dry_run=dry_run)
        source, rule_name, steps = "policy", rule.name, rule.actions
    return Plan(
        source=source,
        rule=rule_name,
        steps=tuple(
            PlannedStep(id=step.step_id(index), step=step) for index, step in enumerate(steps)
        ),
        dry_run=dry_run,
    )
