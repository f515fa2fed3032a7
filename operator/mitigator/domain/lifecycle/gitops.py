"""A target that Argo CD or Flux applies: before the first step, the rule's gitops mode says
whether to suspend the tool's reconciliation for the incident (restored once it is resolved),
to refuse (escalate, naming the tool), or to proceed with a warning. Otherwise the tool's
self-heal would undo the mitigation within seconds, or at its next interval."""

from __future__ import annotations

from mitigator.domain.lifecycle.tick import Tick
from mitigator.models import (
    ActionState,
    GitOpsRecord,
    GitOpsState,
    Phase,
    PolicySpec,
    TimelineEvent,
)
from mitigator.models.execution import GitOpsRequest
from mitigator.models.gitops import GitOpsMode, GitOpsOwner


def gitops_gate(tick: Tick, policy: PolicySpec) -> bool:
    """True when the step may go ahead as far as the target's GitOps tool is concerned."""
    owner, draft = tick.target().gitops, tick.draft
    if owner is None:
        return True
    if draft.gitops is not None and draft.gitops.state in (
        GitOpsState.SUSPENDED,
        GitOpsState.PROCEEDED,
    ):
        return True
    mode = next((r.gitops for r in policy.rules if r.name == draft.rule), GitOpsMode.REFUSE)
    if mode is GitOpsMode.REFUSE:
        refusal = (
            f"Deployment {tick.spec.target.name} is applied by {owner}, whose reconciliation "
            "would undo a mitigation; the rule says gitops: refuse"
        )
        draft.gitops = _record(tick, owner, mode, GitOpsState.REFUSED, refusal)
        tick.refuse(refusal)
        return False
    if mode is GitOpsMode.PROCEED:
        message = (
            f"Deployment {tick.spec.target.name} is applied by {owner}; proceeding "
            "(gitops: proceed): the tool may undo the mitigation at its next sync"
        )
        draft.gitops = _record(tick, owner, mode, GitOpsState.PROCEEDED, message)
        tick.note(TimelineEvent.GITOPS, message, warning=True, on_target=True)
        return True
    outcome = tick.world.suspend_gitops(
        GitOpsRequest(owner=owner, incident_uid=tick.view.uid, now=tick.now)
    )
    if outcome.state is ActionState.APPLIED:
        draft.gitops = _record(
            tick, owner, mode, GitOpsState.SUSPENDED, outcome.message
        ).model_copy(update={"before": outcome.before, "after": outcome.after})
        tick.note(TimelineEvent.GITOPS, outcome.message, on_target=True)
        return True
    if outcome.state is ActionState.SKIPPED:  # nothing to suspend: it does not self-heal
        draft.gitops = _record(tick, owner, mode, GitOpsState.PROCEEDED, outcome.message)
        tick.note(TimelineEvent.GITOPS, outcome.message)
        return True
    if outcome.retryable:
        draft.message = f"waiting to suspend {owner}: {outcome.message}"
        return False
    message = f"could not suspend {owner}: {outcome.message}; nothing was changed"
    draft.gitops = _record(tick, owner, mode, GitOpsState.FAILED, message)
    tick.escalate(message)
    return False


def restore_gitops(tick: Tick) -> None:
    """Once the incident is Resolved (or Failed), the suspended tool reconciles again. An
    Escalated incident keeps it suspended: resuming it would undo the mitigation while
    people are still deciding."""
    draft, record = tick.draft, tick.draft.gitops
    if record is None or record.state is not GitOpsState.SUSPENDED:
        return
    if draft.phase not in (Phase.RESOLVED, Phase.FAILED):
        return
    owner = GitOpsOwner(record.tool, record.kind, record.name, record.namespace)
    outcome = tick.world.restore_gitops(
        GitOpsRequest(
            owner=owner, incident_uid=tick.view.uid, now=tick.now, before=record.before or {}
        )
    )
    restored = outcome.state is ActionState.APPLIED
    if restored:
        draft.gitops = record.model_copy(
            update={
                "state": GitOpsState.RESTORED,
                "restored_at": tick.now,
                "message": outcome.message,
            }
        )
    tick.note(TimelineEvent.GITOPS, outcome.message, warning=not restored, on_target=restored)


def _record(
    tick: Tick, owner: GitOpsOwner, mode: GitOpsMode, state: GitOpsState, message: str
) -> GitOpsRecord:
    return GitOpsRecord(
        tool=owner.tool,
        kind=owner.kind,
        name=owner.name,
        namespace=owner.namespace,
        mode=mode,
        state=state,
        message=message,
        at=tick.now,
    )
