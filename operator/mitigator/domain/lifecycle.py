"""The Incident's life, one tick at a time: Triaging → (AwaitingApproval) → Mitigating →
Verifying → Resolved | Escalated | Failed.

``advance`` is pure over its ports: it reads the world through ``World`` (target snapshot,
metrics, policies), acts through it (apply/revert), and returns the next status plus the
events to post. The handler persists the status; nothing here sleeps or retries by itself —
the next tick simply looks again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from string import Template
from typing import Any, Protocol

from mitigator.domain.classify import classify, effective_severity, severity_hint_from_labels
from mitigator.domain.conditions import set_condition
from mitigator.domain.evidence import Evidence, sample_golden_signals
from mitigator.domain.guardrails import (
    check_concurrency,
    check_protected_namespace,
    cooldown_refusal,
    hourly_cap_refusal,
)
from mitigator.domain.plan import incident_alertname, plan_steps
from mitigator.domain.ports import MetricsProvider, usable_value
from mitigator.domain.selection import PolicyCandidate, choose_policy
from mitigator.domain.timeline import append_timeline, timeline_entry
from mitigator.domain.verify import verify as verify_recovery
from mitigator.models import (
    ActionRecord,
    ActionState,
    ActionStep,
    ActionType,
    Condition,
    ConditionStatus,
    IncidentSpec,
    IncidentStatus,
    MetricQueries,
    Phase,
    PolicySpec,
    RevertRecord,
    SeverityThresholds,
    TimelineEvent,
    VerificationCriteria,
    VerificationResult,
    format_duration,
)
from mitigator.models.evidence import PodHealth, TargetSnapshot
from mitigator.models.outcomes import ActionOutcome


class World(Protocol):
    """Everything ``advance`` needs from outside. Fakes of it make lifecycle tests fast."""

    def snapshot(self, namespace: str, name: str) -> TargetSnapshot: ...

    def metrics(self, prometheus_url: str | None) -> MetricsProvider: ...

    def policies(self, namespace: str) -> Sequence[PolicyCandidate]: ...

    def active_mitigations(self, namespace: str, *, excluding: str) -> int: ...

    def apply(
        self,
        *,
        namespace: str,
        target: str,
        step: ActionStep,
        incident_uid: str,
        action_id: str,
        max_replicas: int,
        now: datetime,
    ) -> ActionOutcome: ...

    def revert(
        self,
        *,
        namespace: str,
        target: str,
        action_type: ActionType,
        before: dict[str, Any],
        incident_uid: str,
        action_id: str,
        now: datetime,
    ) -> ActionOutcome: ...


@dataclass(frozen=True)
class IncidentView:
    namespace: str
    name: str
    uid: str
    generation: int
    spec: IncidentSpec
    status: IncidentStatus


@dataclass(frozen=True)
class Event:
    type: str  # "Normal" | "Warning"
    reason: str
    message: str
    on_target: bool = False


@dataclass
class Advance:
    status: IncidentStatus
    events: list[Event] = field(default_factory=list)
    target_uid: str | None = None


FIRING_ALERTS_QUERY = Template(
    'count(ALERTS{alertstate="firing",namespace="$namespace",deployment="$name"}) or vector(0)'
)
# How long a rollout may take before the step counts as failed, at the least.
MIN_ROLLOUT_TIMEOUT = timedelta(seconds=60)
_REVERSIBLE_ACTION_STATES = (ActionState.APPLIED,)


def advance(
    view: IncidentView,
    *,
    world: World,
    now: datetime,
    protected_namespaces: Iterable[str],
) -> Advance:
    """One step of the incident's life from its current status."""
    return _Tick(view, world=world, now=now, protected_namespaces=protected_namespaces).run()


def step_of(record: ActionRecord) -> ActionStep:
    """The step a recorded action was planned from (the ladder is frozen when planned)."""
    return ActionStep.model_validate({"id": None, record.type.value: record.params})


class _Tick:
    def __init__(
        self,
        view: IncidentView,
        *,
        world: World,
        now: datetime,
        protected_namespaces: Iterable[str],
    ) -> None:
        self.view = view
        self.spec = view.spec
        self.world = world
        self.now = now
        self.protected = tuple(protected_namespaces)
        self.updates: dict[str, Any] = {}
        self.timeline = list(view.status.timeline or ())
        self.events: list[Event] = []
        self._snapshot: TargetSnapshot | None = None
        self._policy: tuple[str | None, PolicySpec | None, str] | None = None

    # ------------------------------------------------------------------ plumbing

    @property
    def status(self) -> IncidentStatus:
        return self.view.status.model_copy(update=self.updates)

    def set(self, **fields: Any) -> None:
        self.updates.update(fields)

    def note(
        self,
        event: TimelineEvent,
        message: str,
        *,
        warning: bool = False,
        on_target: bool = False,
    ) -> None:
        entry = timeline_entry(event.value, message, at=self.now)
        self.timeline = list(append_timeline(self.timeline, entry))
        self.events.append(
            Event("Warning" if warning else "Normal", event.value, message, on_target)
        )

    def target(self) -> TargetSnapshot:
        if self._snapshot is None:
            self._snapshot = self.world.snapshot(self.view.namespace, self.spec.target.name)
        return self._snapshot

    def policy(self) -> tuple[str | None, PolicySpec | None, str]:
        """(name, spec, reason) of the policy covering the target, read fresh each tick: a
        re-applied policy takes effect for the next decision."""
        if self._policy is None:
            self._policy = self._choose_policy()
        return self._policy

    def _choose_policy(self) -> tuple[str | None, PolicySpec | None, str]:
        choice = choose_policy(
            self.world.policies(self.view.namespace),
            target_labels=self.target().labels,
            policy_ref=self.spec.policy_ref.name if self.spec.policy_ref else None,
        )
        if choice.policy is None:
            return None, None, choice.reason
        return choice.policy.name, choice.policy.spec, choice.reason

    def evidence(self, policy: PolicySpec | None) -> Evidence:
        queries = policy.metrics if policy else MetricQueries()
        provider = self.world.metrics(queries.prometheus_url)
        error_rate, p95 = sample_golden_signals(
            provider, queries=queries, namespace=self.view.namespace, name=self.spec.target.name
        )
        pods = self.target().pods or PodHealth(desired=0, ready=0)
        return Evidence(
            error_rate=error_rate, p95_seconds=p95, pods=pods, labels=self.spec.source.labels
        )

    def firing_alerts(self, policy: PolicySpec | None) -> int | None:
        provider = self.world.metrics(policy.metrics.prometheus_url if policy else None)
        sample = provider.query(
            FIRING_ALERTS_QUERY.substitute(
                namespace=self.view.namespace, name=self.spec.target.name
            )
        )
        value = usable_value(sample)
        return int(value) if value is not None else None

    def records(self) -> list[ActionRecord]:
        return list(self.status.actions or ())

    def replace_record(self, index: int, **fields: Any) -> None:
        records = self.records()
        records[index] = records[index].model_copy(update=fields)
        self.set(actions=tuple(records))

    # ------------------------------------------------------------------ the machine

    def run(self) -> Advance:
        phase = self.view.status.phase
        if self.spec.resolve and phase not in (Phase.RESOLVED, Phase.FAILED):
            self.resolve_by_hand()
        elif phase in (None, Phase.TRIAGING):
            self.triage()
        elif phase is Phase.AWAITING_APPROVAL:
            self.await_approval()
        elif phase is Phase.MITIGATING:
            self.mitigate()
        elif phase is Phase.VERIFYING:
            self.verify()
        return self.finish()

    def finish(self) -> Advance:
        status = self.status
        if self.timeline != list(self.view.status.timeline or ()):
            status = status.model_copy(update={"timeline": tuple(self.timeline)})
        status = status.model_copy(
            update={
                "observed_generation": self.view.generation,
                "conditions": conditions_for(status, now=self.now),
            }
        )
        target_uid = self._snapshot.uid if self._snapshot and self._snapshot.exists else None
        return Advance(status=status, events=self.events, target_uid=target_uid)

    def protected_refusal(self, policy: PolicySpec) -> str | None:
        return check_protected_namespace(
            self.view.namespace,
            protected_namespaces=(*self.protected, *policy.guardrails.protected_namespaces),
        )

    def enter(self, phase: Phase, message: str) -> None:
        self.set(phase=phase, message=message)

    def escalate(self, message: str) -> None:
        self.enter(Phase.ESCALATED, message)
        self.note(TimelineEvent.ESCALATED, message, warning=True)

    def fail(self, message: str) -> None:
        self.enter(Phase.FAILED, message)
        self.note(TimelineEvent.FAILED, message, warning=True)

    # ------------------------------------------------------------------ Triaging

    def triage(self) -> None:
        spec, namespace = self.spec, self.view.namespace
        if self.view.status.detected_at is None:
            self.set(detected_at=self.now, phase=Phase.TRIAGING)
            origin = spec.source.type.value
            if spec.source.alertname:
                origin += f" alert {spec.source.alertname}"
            self.note(
                TimelineEvent.DETECTED, f"incident on Deployment {spec.target.name} ({origin})"
            )
        target = self.target()
        if not target.exists:
            self.fail(f"Deployment {namespace}/{spec.target.name} not found")
            return
        policy_name, policy, policy_reason = self.policy()
        thresholds = policy.severity_thresholds if policy else SeverityThresholds()
        classification = classify(self.evidence(policy), thresholds=thresholds, now=self.now)
        severity = effective_severity(
            spec.severity,
            classification,
            alert_severity_hint=severity_hint_from_labels(spec.source.labels),
            act_on_unknown=policy.guardrails.act_on_unknown if policy else False,
        )
        self.set(classification=classification, severity=severity, policy=policy_name)
        given = f"; the spec sets {spec.severity}" if spec.severity else ""
        self.note(
            TimelineEvent.CLASSIFIED,
            f"evidence says {classification.severity}: {'; '.join(classification.reasons)}{given}",
        )
        if policy is None:
            self.escalate(f"no action taken: {policy_reason}")
            return
        refusal = self.protected_refusal(policy)
        if refusal:
            self.note(TimelineEvent.REFUSED, refusal, warning=True)
            self.escalate(f"refused: {refusal}; nothing was changed")
            return
        plan = plan_steps(
            spec,
            policy,
            severity=severity,
            last_rollout_age=(self.now - target.last_rollout_at)
            if target.last_rollout_at
            else None,
        )
        if plan.is_empty:
            self.escalate(
                f"policy {policy_name} has no rule for severity {severity}"
                f" (alert {incident_alertname(spec) or 'none'}); no action taken"
            )
            return
        self.set(
            rule=plan.rule,
            current_step=0,
            actions=tuple(
                ActionRecord(
                    id=step.id,
                    type=step.action_type,
                    params=step.step.params,
                    state=ActionState.DRY_RUN if plan.dry_run else ActionState.PENDING,
                )
                for step in plan.steps
            ),
        )
        ladder = " → ".join(step.id for step in plan.steps)
        origin = "spec.actions" if plan.source == "incident" else f"rule {plan.rule}"
        self.note(TimelineEvent.PLANNED, f"plan from {origin} of policy {policy_name}: {ladder}")
        if plan.dry_run:
            self.escalate("dry run: the plan is recorded and nothing was changed; a person decides")
            return
        refusal = cooldown_refusal(
            target.applied,
            incident_uid=self.view.uid,
            cooldown=policy.guardrails.cooldown,
            now=self.now,
        )
        if refusal:
            self.note(TimelineEvent.REFUSED, refusal, warning=True)
            self.escalate(f"refused: {refusal}; nothing was changed")
            return
        self.enter(Phase.MITIGATING, "applying the plan")
        self.mitigate()

    def await_approval(self) -> None:
        if not self.spec.approved:
            return
        self.note(TimelineEvent.APPROVED, "approved: spec.approved is true")
        self.enter(Phase.MITIGATING, "approved; applying the plan")
        self.mitigate()

    # ------------------------------------------------------------------ Mitigating

    def mitigate(self) -> None:
        records = self.records()
        index = self.status.current_step or 0
        if index >= len(records):
            self.escalate("every step of the plan was tried; the target is still unhealthy")
            return
        record = records[index]
        if record.state is not ActionState.PENDING:
            self.next_step()  # a step already settled (e.g. skipped): move on
            return
        _, policy, reason = self.policy()
        if policy is None:
            self.escalate(f"stopped before step {record.id}: {reason}")
            return
        guardrails = policy.guardrails
        if record.type in guardrails.require_approval_for and not self.spec.approved:
            # Steps before this one went ahead; this one is a person's decision.
            message = (
                f"step {record.id} ({record.type.value}) needs approval: set spec.approved: true"
            )
            self.enter(Phase.AWAITING_APPROVAL, message)
            self.note(TimelineEvent.AWAITING_APPROVAL, message)
            return
        refusal = self.protected_refusal(policy) or hourly_cap_refusal(
            self.target().applied, limit=guardrails.max_actions_per_hour, now=self.now
        )
        if refusal:
            self.note(TimelineEvent.REFUSED, refusal, warning=True)
            self.escalate(f"refused before step {record.id}: {refusal}")
            return
        busy = check_concurrency(
            self.world.active_mitigations(self.view.namespace, excluding=self.view.uid),
            max_concurrent=guardrails.max_concurrent_mitigations,
        )
        if busy:
            self.set(message=f"waiting before step {record.id}: {busy}")
            return
        self.note(
            TimelineEvent.ACTION_STARTED, f"step {record.id}: {record.type.value} {record.params}"
        )
        outcome = self.world.apply(
            namespace=self.view.namespace,
            target=self.spec.target.name,
            step=step_of(record),
            incident_uid=self.view.uid,
            action_id=record.id,
            max_replicas=guardrails.max_replicas,
            now=self.now,
        )
        self.settle(index, record, outcome)

    def settle(self, index: int, record: ActionRecord, outcome: ActionOutcome) -> None:
        common = {"message": outcome.message, "started_at": record.started_at or self.now}
        if outcome.state == "Applied":
            self.replace_record(
                index,
                state=ActionState.APPLIED,
                before=outcome.before,
                after=outcome.after,
                finished_at=self.now,
                **common,
            )
            if self.status.mitigated_at is None:
                self.set(mitigated_at=self.now)
            recovered = " (recovered: applied before a restart)" if outcome.recovered else ""
            self.note(TimelineEvent.ACTION_APPLIED, f"{outcome.message}{recovered}", on_target=True)
            self.set(verification=VerificationResult(passed=False, at=self.now))
            self.enter(Phase.VERIFYING, f"step {record.id} applied; waiting for the rollout")
        elif outcome.state == "Failed" and outcome.retryable:
            self.replace_record(index, **common)
            self.set(message=f"step {record.id} will be retried: {outcome.message}")
        else:
            state = ActionState.SKIPPED if outcome.state == "Skipped" else ActionState.FAILED
            self.replace_record(index, state=state, finished_at=self.now, **common)
            self.note(
                TimelineEvent.ACTION_FAILED,
                f"step {record.id} {state.value.lower()}: {outcome.message}",
                warning=True,
            )
            self.next_step()

    def next_step(self) -> None:
        index = (self.status.current_step or 0) + 1
        if index >= len(self.records()):
            self.escalate("every step of the plan was tried; the target is still unhealthy")
            return
        self.set(current_step=index, verification=None)
        self.enter(Phase.MITIGATING, f"moving on to step {self.records()[index].id}")
        self.mitigate()

    # ------------------------------------------------------------------ Verifying

    def verify(self) -> None:
        records = self.records()
        index = self.status.current_step or 0
        record = records[index]
        _, policy, _ = self.policy()
        criteria = policy.verification if policy else VerificationCriteria()
        window = criteria.window
        timeout = criteria.timeout or window * 3
        previous = self.status.verification or VerificationResult(passed=False)
        started = previous.window_started_at
        target = self.target()
        if started is None:
            if target.pods is None or target.pods.rollout_in_progress:
                limit = max(MIN_ROLLOUT_TIMEOUT, timeout)
                if record.finished_at and self.now - record.finished_at > limit:
                    self.note(
                        TimelineEvent.VERIFICATION_FAILED,
                        f"the rollout after step {record.id} did not complete "
                        f"within {format_duration(limit)}",
                        warning=True,
                    )
                    self.next_step()
                return
            started = self.now
            self.note(
                TimelineEvent.VERIFYING,
                f"rollout complete; checking recovery for {format_duration(window)}",
            )
        result = verify_recovery(
            self.evidence(policy),
            criteria=criteria,
            firing_alerts=self.firing_alerts(policy) if criteria.require_no_firing_alerts else 0,
        )
        passing_since = (previous.passing_since or self.now) if result.passed else None
        self.set(
            verification=result.model_copy(
                update={
                    "at": self.now,
                    "window_started_at": started,
                    "passing_since": passing_since,
                }
            )
        )
        if result.passed and passing_since is not None and self.now - passing_since >= window:
            self.note(
                TimelineEvent.VERIFIED,
                f"recovered after step {record.id}: " + "; ".join(_describe_checks(result)),
            )
            self.resolve(f"verified recovered after step {record.id}", policy=policy)
        elif not result.passed and self.now - started >= timeout:
            failing = [c for c in result.checks if not c.passed]
            self.note(
                TimelineEvent.VERIFICATION_FAILED,
                f"not recovered {format_duration(timeout)} after step {record.id}: "
                + "; ".join(_describe_checks(result, only=failing)),
                warning=True,
            )
            self.next_step()

    # ------------------------------------------------------------------ Resolved

    def resolve(self, message: str, *, policy: PolicySpec | None) -> None:
        self.revert_temporary_measures(policy)
        self.set(resolved_at=self.now)
        self.enter(Phase.RESOLVED, message)
        self.note(TimelineEvent.RESOLVED, message)

    def resolve_by_hand(self) -> None:
        _, policy, _ = self.policy() if self.target().exists else (None, None, "")
        self.resolve("resolved by a person (spec.resolve)", policy=policy)

    def revert_temporary_measures(self, policy: PolicySpec | None) -> None:
        """Undo what the policy's revertOnResolve names (a scale-up, an env var, maintenance),
        newest first, from the state recorded before each change."""
        if policy is None or not policy.revert_on_resolve:
            return
        reverts = list(self.status.reverts or ())
        done = {r.action_id for r in reverts if r.state is ActionState.REVERTED}
        for record in reversed(self.records()):
            if (
                record.state not in _REVERSIBLE_ACTION_STATES
                or record.type not in policy.revert_on_resolve
                or record.id in done
                or record.before is None
            ):
                continue
            outcome = self.world.revert(
                namespace=self.view.namespace,
                target=self.spec.target.name,
                action_type=record.type,
                before=dict(record.before),
                incident_uid=self.view.uid,
                action_id=record.id,
                now=self.now,
            )
            reverted = outcome.state == "Applied"
            reverts.append(
                RevertRecord(
                    action_id=record.id,
                    type=record.type,
                    state=ActionState.REVERTED if reverted else ActionState.FAILED,
                    message=outcome.message,
                    at=self.now,
                )
            )
            self.note(
                TimelineEvent.REVERTED,
                f"revert of {record.id}: {outcome.message}",
                warning=not reverted,
                on_target=reverted,
            )
        self.set(reverts=tuple(reverts))


def _describe_checks(result: VerificationResult, *, only: Sequence[Any] | None = None) -> list[str]:
    checks = result.checks if only is None else only
    return [
        f"{c.name} {'ok' if c.passed else 'failing'} ({c.observed} vs {c.threshold})"
        + (f": {c.message}" if c.message and not c.passed else "")
        for c in checks
    ]


def conditions_for(status: IncidentStatus, *, now: datetime) -> tuple[Condition, ...]:
    """`Resolved` (True once verified or closed by hand) and `Escalated` (people must act)."""
    reason = (status.phase or Phase.TRIAGING).value
    message = status.message or ""
    conditions = status.conditions
    for kind, holds in (
        ("Resolved", status.phase is Phase.RESOLVED),
        ("Escalated", status.phase is Phase.ESCALATED),
    ):
        conditions = set_condition(
            conditions,
            condition_type=kind,
            status=ConditionStatus.TRUE if holds else ConditionStatus.FALSE,
            reason=reason,
            message=message,
            now=now,
        )
    return tuple(conditions or ())
