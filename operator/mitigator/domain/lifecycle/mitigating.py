"""Mitigating: apply the current step of the ladder, within the policy's guardrails, and
settle what the executor answered. AwaitingApproval is the pause before a step that needs a
person's go."""

from __future__ import annotations

from functools import partial

from mitigator.domain.guardrails import admission, check_approval
from mitigator.domain.lifecycle.gitops import gitops_gate
from mitigator.domain.lifecycle.tick import Tick
from mitigator.models import ActionRecord, ActionState, Phase, TimelineEvent, VerificationResult
from mitigator.models.evidence import Contender
from mitigator.models.execution import ActionOutcome, ActionRequest

_NOT_APPLIED = (ActionState.SKIPPED, ActionState.FAILED, ActionState.REFUSED)


def plan_exhausted(records: list[ActionRecord]) -> str:
    """Why the ladder ended without recovery, naming what each step that did nothing said."""
    unapplied = "; ".join(
        f"{r.id} {r.state.value.lower()}: {r.message}" for r in records if r.state in _NOT_APPLIED
    )
    if not any(r.state is ActionState.APPLIED for r in records):
        return f"no step could be applied: {unapplied}" if unapplied else "no step was applied"
    tail = f" (not applied: {unapplied})" if unapplied else ""
    return f"every step of the plan was tried; the target is still unhealthy{tail}"


def await_approval(tick: Tick) -> None:
    if not tick.spec.approved:
        return
    by = f" by {tick.spec.approved_by}" if tick.spec.approved_by else ""
    tick.note(TimelineEvent.APPROVED, f"approved{by}: spec.approved is true")
    tick.draft.enter(Phase.MITIGATING, "approved; applying the plan")
    mitigate(tick)


def mitigate(tick: Tick) -> None:
    draft = tick.draft
    index = draft.step_index
    if index >= len(draft.actions):
        tick.escalate(plan_exhausted(draft.actions))
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
    refusal = tick.protected_refusal(policy)
    if refusal:
        tick.refuse(refusal, before=f"step {record.id}")
        return
    holder = tick.world.mitigator_of(tick.view.namespace, tick.spec.target.name, me=tick.view.uid)
    if holder is not None and not draft.holds_claim:
        # Already being mitigated: attach now rather than queue for a slot behind it (a storm
        # of duplicates would otherwise wait its turn, a few per tick, to be told the same).
        # No write follows from this; a holder that has just finished only means this
        # Incident follows its outcome, as when the executor finds the claim.
        message = (
            f"Incident {holder} is mitigating Deployment {tick.spec.target.name}; "
            "this one is attached to it"
        )
        _settle(tick, index, record, ActionOutcome(ActionState.REFUSED, message, claimed_by=holder))
        return
    me = Contender(
        uid=tick.view.uid,
        name=tick.view.name,
        detected_at=draft.detected_at,
        holds_claim=draft.holds_claim,
        waiting=True,
    )
    busy = tick.world.request_slot(
        tick.view.namespace, me, limit=guardrails.max_concurrent_mitigations
    )
    if busy:
        draft.message = f"waiting before step {record.id}: {busy}"
        return
    # After the slot: a wait reads nothing of the target, and a GitOps tool is suspended
    # only when the step is about to go ahead.
    if not gitops_gate(tick, policy):
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
            incident_name=tick.view.name,
            action=record.action,
            max_replicas=guardrails.max_replicas,
            # Cooldown and hourly cap, decided on the records as the write reads them.
            admit=partial(
                admission,
                incident_uid=tick.view.uid,
                cooldown=guardrails.cooldown,
                hourly_limit=guardrails.max_actions_per_hour,
                now=tick.now,
            ),
            now=tick.now,
            read=tick.read(),
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
                "evidence": outcome.evidence,
            }
        )
        if outcome.evidence:
            tick.note(
                TimelineEvent.EVIDENCE,
                f"before step {record.id}: pods' logs, Events and the target's spec kept in "
                f"ConfigMap {outcome.evidence}",
            )
        if draft.mitigated_at is None:
            draft.mitigated_at = now
        recovered = " (recovered: applied before a restart)" if outcome.recovered else ""
        tick.note(TimelineEvent.ACTION_APPLIED, f"{outcome.message}{recovered}", on_target=True)
        draft.verification = VerificationResult(passed=False, at=now)
        draft.enter(Phase.VERIFYING, f"step {record.id} applied; waiting for the rollout")
    elif outcome.claimed_by is not None:
        # Another Incident holds the target: it mitigates, this one is attached to it.
        draft.actions[index] = record.model_copy(
            update={"message": outcome.message, "started_at": started_at}
        )
        draft.attached_to = outcome.claimed_by
        draft.enter(Phase.SUPPRESSED, outcome.message)
        tick.note(TimelineEvent.SUPPRESSED, outcome.message)
    elif outcome.state is ActionState.REFUSED:
        draft.actions[index] = record.model_copy(
            update={
                "state": ActionState.REFUSED,
                "finished_at": now,
                "message": outcome.message,
                "started_at": started_at,
            }
        )
        tick.refuse(outcome.message, before=f"step {record.id}")
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
        tick.escalate(plan_exhausted(draft.actions))
        return
    draft.current_step = index
    draft.verification = None
    draft.enter(Phase.MITIGATING, f"moving on to step {draft.actions[index].id}")
    mitigate(tick)
