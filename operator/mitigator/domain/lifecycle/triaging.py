"""Triaging: look at the target and the evidence, classify, choose the plan, and either start
mitigating or say why not."""

from __future__ import annotations

from mitigator import failpoints
from mitigator.domain.classify import classify, effective_severity, severity_hint_from_labels
from mitigator.domain.guardrails import check_approval, target_wait
from mitigator.domain.lifecycle.mitigating import mitigate
from mitigator.domain.lifecycle.tick import Tick
from mitigator.domain.plan import Plan, first_step_types, incident_alertname, plan_steps
from mitigator.models import (
    ActionRecord,
    ActionState,
    ActionType,
    Phase,
    PolicySpec,
    SeverityThresholds,
    TimelineEvent,
    format_duration,
    format_timestamp,
)
from mitigator.models.actions import POD_REPLACING_ACTIONS


def triage(tick: Tick) -> None:
    spec, draft = tick.spec, tick.draft
    if draft.detected_at is None:
        draft.detected_at = tick.now
        draft.phase = Phase.TRIAGING
        origin = spec.source.type.value
        if spec.source.alertname:
            origin += f" alert {spec.source.alertname}"
        tick.note(TimelineEvent.DETECTED, f"incident on Deployment {spec.target.name} ({origin})")
    target = tick.target()
    if not target.exists:
        _wait_for_target(tick)
        return
    chosen = tick.policy()
    policy = chosen.spec
    thresholds = policy.severity_thresholds if policy else SeverityThresholds()
    # The last rollout costs a LIST of the target's ReplicaSets: read only if a rule asks.
    rules = policy.rules if policy else []
    asks = any(rule.when.recent_rollout_within is not None for rule in rules)
    _read_ahead(tick, policy, replica_sets=asks)
    evidence = tick.evidence(policy, pod_level=True)  # crash loops and OOM kills count here
    classification = classify(evidence, thresholds=thresholds, now=tick.now)
    severity = effective_severity(
        spec.severity,
        classification,
        alert_severity_hint=severity_hint_from_labels(spec.source.labels),
        act_on_unknown=policy.guardrails.act_on_unknown if policy else False,
    )
    draft.classification, draft.severity, draft.policy = classification, severity, chosen.name
    given = f"; the spec sets {spec.severity}" if spec.severity else ""
    tick.note(
        TimelineEvent.CLASSIFIED,
        f"evidence says {classification.severity}: {'; '.join(classification.reasons)}{given}",
    )
    failpoints.crash_if_armed(failpoints.AFTER_CLASSIFICATION)  # crash tests only
    if policy is None:
        tick.escalate(f"no action taken: {chosen.reason}")
        return
    refusal = tick.protected_refusal(policy)
    if refusal:
        tick.refuse(refusal)
        return
    rolled_out_at = target.rollout_at() if asks else None
    last_rollout_age = tick.now - rolled_out_at if rolled_out_at else None
    plan = plan_steps(spec, policy, severity=severity, last_rollout_age=last_rollout_age)
    if plan.is_empty:
        tick.escalate(
            f"policy {chosen.name} has no rule for severity {severity}"
            f" (alert {incident_alertname(spec) or 'none'}); no action taken"
        )
        return
    _record_plan(tick, plan, policy_name=chosen.name)
    failpoints.crash_if_armed(failpoints.AFTER_PLANNING)  # crash tests only
    if plan.dry_run:
        tick.escalate("dry run: the plan is recorded and nothing was changed; a person decides")
        return
    # The cooldown and the hourly cap are decided by the write itself, on the target as it
    # is then (see mitigating): a decision taken here would rest on a read already old.
    draft.enter(Phase.MITIGATING, "applying the plan")
    mitigate(tick)


def _read_ahead(tick: Tick, policy: PolicySpec | None, *, replica_sets: bool) -> None:
    """Start, beside the classification's reads, what the first step may read: a rollback's
    ReplicaSets, and the evidence of a step that replaces pods. A first tick that acts then
    waits for the longest of them, not for their sum; one that does not act has read them for
    nothing, once. Nothing for a step that cannot be written this tick (a dry run, a step
    that needs approval, a protected namespace, a target another Incident is mitigating: a
    storm of duplicates reads nothing ahead). An Incident that then waits for a slot has read
    them once for nothing (the slot is asked for only when the step goes ahead)."""
    if policy is None or tick.protected_refusal(policy) is not None:
        return
    view = tick.view
    if tick.world.mitigator_of(view.namespace, tick.spec.target.name, me=view.uid) is not None:
        return
    first = {
        action_type
        for action_type in first_step_types(tick.spec, policy)
        if check_approval(
            action_type,
            require_approval_for=policy.guardrails.require_approval_for,
            approved=tick.spec.approved,
        )
        is None
    }
    tick.target().prefetch_for_steps(
        replica_sets=replica_sets or ActionType.ROLLBACK in first,
        evidence=bool(first & POD_REPLACING_ACTIONS),
    )


def _wait_for_target(tick: Tick) -> None:
    """A Deployment created in the same apply, or mid-rollout, may not exist yet: wait for it
    up to the policy's guardrails.targetWait, then fail with the reason."""
    spec, draft = tick.spec, tick.draft
    where = f"Deployment {tick.view.namespace}/{spec.target.name}"
    wait = target_wait(
        tick.world.policies(tick.view.namespace),
        policy_ref=spec.policy_ref.name if spec.policy_ref else None,
    )
    since = draft.detected_at or tick.now
    if tick.now - since >= wait:
        tick.fail(f"{where} not found (waited {format_duration(wait)})")
        return
    draft.message = (
        f"waiting for {where} to exist (up to {format_duration(wait)}, "
        f"until {format_timestamp(since + wait)})"
    )


def _record_plan(tick: Tick, plan: Plan, *, policy_name: str | None) -> None:
    """The ladder goes into status.actions as it is planned: frozen from here on."""
    tick.draft.rule = plan.rule
    tick.draft.current_step = 0
    tick.draft.actions = [
        ActionRecord(
            id=step.id,
            type=step.action_type,
            params=step.step.params,
            state=ActionState.DRY_RUN if plan.dry_run else ActionState.PENDING,
        )
        for step in plan.steps
    ]
    ladder = " → ".join(step.id for step in plan.steps)
    origin = "spec.actions" if plan.source == "incident" else f"rule {plan.rule}"
    tick.note(TimelineEvent.PLANNED, f"plan from {origin} of policy {policy_name}: {ladder}")
