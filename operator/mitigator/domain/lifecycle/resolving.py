"""Resolved: verified recovered, or closed by a person; the policy's temporary measures
(revertOnResolve) are undone, newest first, from the state recorded before each."""

from __future__ import annotations

from mitigator.domain.lifecycle.tick import Tick
from mitigator.models import (
    ALWAYS_REVERTED_ACTION_TYPES,
    ActionState,
    Phase,
    PolicySpec,
    RevertRecord,
    TimelineEvent,
)
from mitigator.models.execution import ReleaseRequest, RevertRequest


def resolve(tick: Tick, message: str, *, policy: PolicySpec | None) -> None:
    _revert_temporary_measures(tick, policy)
    tick.draft.resolved_at = tick.now
    tick.draft.enter(Phase.RESOLVED, message)
    tick.note(TimelineEvent.RESOLVED, message)


def resolve_by_hand(tick: Tick) -> None:
    policy = tick.policy().spec if tick.target().exists else None
    who = tick.spec.resolved_by or "a person"
    resolve(tick, f"resolved by {who} (spec.resolve)", policy=policy)


def release_claim(tick: Tick) -> None:
    """An incident that stops mitigating (Resolved, Escalated, Failed) gives the target's
    claim up in the same tick. Best effort: a claim left behind by an incident that is done
    does not hold the target (the next claimant checks)."""
    before = tick.view.status.phase or Phase.TRIAGING
    after = tick.draft.phase or Phase.TRIAGING
    if tick.claim_released:
        return  # given up in the patch of the last revert
    if before.advances_by_itself and not after.advances_by_itself and tick.draft.holds_claim:
        tick.world.release(
            ReleaseRequest(
                namespace=tick.view.namespace,
                target=tick.spec.target.name,
                incident_uid=tick.view.uid,
                read=tick.read(),
            )
        )


def _revert_temporary_measures(tick: Tick, policy: PolicySpec | None) -> None:
    # The policy's temporary measures, and an isolation always (containment, never the fix).
    undo = (
        set(policy.revert_on_resolve if policy is not None else ()) | ALWAYS_REVERTED_ACTION_TYPES
    )
    draft = tick.draft
    done = {r.action_id for r in draft.reverts if r.state is ActionState.REVERTED}
    due = [
        record
        for record in reversed(draft.actions)
        if record.state is ActionState.APPLIED
        and record.type in undo
        and record.id not in done
        and record.before is not None
    ]
    for record in due:
        outcome = tick.world.revert(
            RevertRequest(
                namespace=tick.view.namespace,
                target=tick.spec.target.name,
                incident_uid=tick.view.uid,
                action_id=record.id,
                action_type=record.type,
                before=dict(record.before or {}),
                now=tick.now,
                read=tick.read(),
                # Resolving ends the incident's hold on the target: the last revert's patch
                # gives the claim up too, rather than a second patch right after it.
                release_claim=record is due[-1],
            )
        )
        tick.claim_released = tick.claim_released or outcome.released_claim
        reverted = outcome.state is ActionState.APPLIED
        draft.reverts.append(
            RevertRecord(
                action_id=record.id,
                type=record.type,
                state=ActionState.REVERTED if reverted else ActionState.FAILED,
                message=outcome.message,
                at=tick.now,
            )
        )
        tick.note(
            TimelineEvent.REVERTED,
            f"revert of {record.id}: {outcome.message}",
            warning=not reverted,
            on_target=reverted,
        )
