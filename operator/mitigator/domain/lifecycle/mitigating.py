"""Mitigating: apply the current step of the ladder, within the policy's guardrails, and
settle what the executor answered. AwaitingApproval is the pause before a step that needs a
person's go."""

from __future__ import annotations

from mitigator.domain.guardrails import check_approval, check_concurrency, hourly_cap_refusal
from mitigator.domain.lifecycle.tick import Tick
from mitigator.models import ActionRecord, ActionState, Phase, TimelineEvent, VerificationResult
from mitigator.models.execution import ActionOutcome, ActionRequest

PLAN_EXHAUSTED = "every step of the plan was tried; the target is still unhealthy"


def await_approval(tick: Tick) -> None:
    if not tick.spec.approved:
        return
    tick.note(TimelineEvent.APPROVED, "approved: spec.approved is true")
    tick.draft.enter(Phase.MITIGATING, "approved; applying the plan")
    mitigate(tick)


def mitigate(tick: Tick) -> None:
    draft = tick.draft
    index = draft.step_index
    if index >= len(draft.actions):
        tick.escalate(PLAN_EXHAUSTED)
        return
    record = draft.actions[index]
    if record.state is not ActionState.PENDING:
        next_step(tick)  # a step already settled (e.g. skipped): move on
        return
    chosen = tick.policy()
    policy = chosen.spec
    if policy is None:
        tick.escalate(f"stopped before step {record.id}: {chosen.reason}")
        return
    guardrails = policy.guardrails
    needs_approval = check_approval(
        record.type,
        require_approval_for=guardrails.require_approval_for,
        approved=tick.spec.approved,
    )
    if needs_approval:
        # Steps before this one went ahead; this one is a person's decision.
        message = f"step {record.id}: {needs_approval}"
        draft.enter(Phase.AWAITING_APPROVAL, message)
        tick.note(TimelineEvent.AWAITING_APPROVAL, message)
        return
    refusal = tick.protected_refusal(policy) or hourly_cap_refusal(
        tick.target().applied, limit=guardrails.max_actions_per_hour, now=tick.now
    )
    if refusal:
        tick.note(TimelineEvent.REFUSED, refusal, warning=True)
        tick.escalate(f"refused before step {record.id}: {refusal}")
        return
    busy = check_concurrency(
        tick.world.active_mitigations(tick.view.namespace, excluding=tick.view.uid),
        max_concurrent=guardrails.max_concurrent_mitigations,
    )
    if busy:
        draft.message = f"waiting before step {record.id}: {busy}"
        return
    tick.note(
        TimelineEvent.ACTION_STARTED, f"step {record.id}: {record.type.value} {record.params}"
    )
    outcome = tick.world.apply(
        ActionRequest(
            namespace=tick.view.namespace,
            target=tick.spec.target.name,
            incident_uid=tick.view.uid,
            action_id=record.id,
            action=record.action,
            max_replicas=guardrails.max_replicas,
            now=tick.now,
        )
    )
    _settle(tick, index, record, outcome)


def _settle(tick: Tick, index: int, record: ActionRecord, outcome: ActionOutcome) -> None:
    draft, now = tick.draft, tick.now
    started_at = record.started_at or now
    if outcome.state is ActionState.APPLIED:
        draft.actions[index] = record.model_copy(
            update={
                "state": ActionState.APPLIED,
                "before": outcome.before,
                "after": outcome.after,
                "finished_at": now,
                "message": outcome.message,
                "started_at": started_at,
            }
        )
        if draft.mitigated_at is None:
            draft.mitigated_at = now
        recovered = " (recovered: applied before a restart)" if outcome.recovered else ""
        tick.note(TimelineEvent.ACTION_APPLIED, f"{outcome.message}{recovered}", on_target=True)
        draft.verification = VerificationResult(passed=False, at=now)
        draft.enter(Phase.VERIFYING, f"step {record.id} applied; waiting for the rollout")
    elif outcome.state is ActionState.FAILED and outcome.retryable:
        draft.actions[index] = record.model_copy(
            update={"message": outcome.message, "started_at": started_at}
        )
        draft.message = f"step {record.id} will be retried: {outcome.message}"
    else:
        state = ActionState.SKIPPED if outcome.state is ActionState.SKIPPED else ActionState.FAILED
        draft.actions[index] = record.model_copy(
            update={
                "state": state,
                "finished_at": now,
                "message": outcome.message,
                "started_at": started_at,
            }
        )
        tick.note(
            TimelineEvent.ACTION_FAILED,
            f"step {record.id} {state.value.lower()}: {outcome.message}",
            warning=True,
        )
        next_step(tick)


def next_step(tick: Tick) -> None:
    draft = tick.draft
    index = draft.step_index + 1
    if index >= len(draft.actions):
        tick.escalate(PLAN_EXHAUSTED)
        return
    draft.current_step = index
    draft.verification = None
    draft.enter(Phase.MITIGATING, f"moving on to step {draft.actions[index].id}")
    mitigate(tick)
