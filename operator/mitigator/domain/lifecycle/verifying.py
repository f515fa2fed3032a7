"""Verifying: once the rollout is complete, the guide's recovery checklist must hold without
a break for the policy's window; failing past the timeout moves on to the next step.

The checklist runs every tick, but the status keeps the recorded result until this tick's
says something new (`worth_recording`): a window in which nothing changes costs no write per
tick. The verdict is always written with the values that reached it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from mitigator.domain.drift import undone_reason
from mitigator.domain.lifecycle.mitigating import next_step
from mitigator.domain.lifecycle.resolving import resolve
from mitigator.domain.lifecycle.tick import Tick
from mitigator.domain.verify import verify_recovery, window_remaining, worth_recording
from mitigator.models import (
    TimelineEvent,
    VerificationCheck,
    VerificationCriteria,
    VerificationResult,
    format_duration,
)
from mitigator.models.execution import REVERT_KEY_SUFFIX, action_key

# How long a rollout may take before the step counts as failed, at the least.
MIN_ROLLOUT_TIMEOUT = timedelta(seconds=60)


def verify(tick: Tick) -> None:
    draft, now = tick.draft, tick.now
    record = draft.actions[draft.step_index]
    policy = tick.policy().spec
    criteria = policy.verification if policy else VerificationCriteria()
    window = criteria.window
    timeout = criteria.timeout or window * 3
    previous = draft.verification or VerificationResult(passed=False)
    started = previous.window_started_at
    if not tick.target().exists:
        # Nothing left to verify or to mitigate: waiting for a rollout of a deleted object
        # would only time out into an escalation that hides why.
        tick.fail(
            f"Deployment {tick.view.namespace}/{tick.spec.target.name} was deleted during "
            f"the incident, after step {record.id}"
        )
        return
    undone = undone_reason(record, tick.target())
    if undone is not None and _reverted_by_us(tick, record.id):
        # Our own revertOnResolve landed, and the operator died before it could record that
        # (a revert is only written once verification passed): finish resolving, not escalate.
        tick.note(
            TimelineEvent.VERIFIED,
            f"recovered after step {record.id} (verified before a restart; its revert is on "
            "the target already)",
        )
        resolve(tick, f"verified recovered after step {record.id}", policy=policy)
        return
    if undone is not None:
        owner = tick.target().gitops
        by = f" (the target is applied by {owner})" if owner else ""
        message = (
            f"step {record.id} was undone behind the operator's back{by}: {undone}; "
            "not applying it again against the other writer"
        )
        tick.note(TimelineEvent.VERIFICATION_FAILED, message, warning=True)
        tick.escalate(message)
        return
    if started is None:
        pods = tick.target().pods
        if pods is None or pods.rollout_in_progress:
            limit = max(MIN_ROLLOUT_TIMEOUT, timeout)
            if record.finished_at and now - record.finished_at > limit:
                tick.note(
                    TimelineEvent.VERIFICATION_FAILED,
                    f"the rollout after step {record.id} did not complete "
                    f"within {format_duration(limit)}",
                    warning=True,
                )
                next_step(tick)
            return
        started = now
        tick.note(
            TimelineEvent.VERIFYING,
            f"rollout complete; checking recovery for {format_duration(window)}",
        )
    firing = tick.firing_alerts(policy) if criteria.require_no_firing_alerts else 0
    result = verify_recovery(
        tick.evidence(policy),
        criteria=criteria,
        firing_alerts=firing,
        now=now,
        window_started_at=started,
    )
    passing_since = (previous.passing_since or now) if result.passed else None
    result = result.model_copy(update={"passing_since": passing_since})
    if worth_recording(draft.verification, result, refresh=tick.verification_refresh):
        draft.verification = result
    if (
        passing_since is not None
        and window_remaining(window_started_at=passing_since, window=window, now=now) == timedelta()
    ):
        draft.verification = result  # the verdict, with the values that reached it
        tick.note(
            TimelineEvent.VERIFIED,
            f"recovered after step {record.id}: " + "; ".join(_describe(result.checks)),
        )
        resolve(tick, f"verified recovered after step {record.id}", policy=policy)
    elif not result.passed and now - started >= timeout:
        # The verdict with its values: the escalation that ends an exhausted ladder keeps it;
        # a next step starts a new record (the timeline keeps these values either way).
        draft.verification = result
        failing = [check for check in result.checks if not check.passed]
        tick.note(
            TimelineEvent.VERIFICATION_FAILED,
            f"not recovered {format_duration(timeout)} after step {record.id}: "
            + "; ".join(_describe(failing)),
            warning=True,
        )
        next_step(tick)


def _reverted_by_us(tick: Tick, action_id: str) -> bool:
    key = action_key(tick.view.uid, action_id) + REVERT_KEY_SUFFIX
    return key in tick.target().record_keys


def _describe(checks: Sequence[VerificationCheck]) -> list[str]:
    return [
        f"{c.name} {'ok' if c.passed else 'failing'} ({c.observed} vs {c.threshold})"
        + (f": {c.message}" if c.message and not c.passed else "")
        for c in checks
    ]
