"""Whether an applied action still holds on the target, or someone (a GitOps tool re-applying
Git, a person with kubectl) undid it: a mitigation undone behind the operator's back is
escalated with that reason, never applied again in a loop against the other writer."""

from __future__ import annotations

from mitigator.models import ActionRecord, ActionType
from mitigator.models.evidence import TargetSnapshot


def undone_reason(record: ActionRecord, target: TargetSnapshot) -> str | None:
    """What differs from what the action recorded as its result, or None while it holds."""
    after = record.after or {}
    if not target.exists:
        return None  # a missing target is its own story (the rollout wait, then Failed)
    if record.type is ActionType.ROLLBACK and "images" in after:
        if after["images"] != target.images:
            return f"the images are {target.images}, the rollback set {after['images']}"
    elif record.type in (ActionType.SCALE, ActionType.MAINTENANCE):
        # With an autoscaler, the HPA owns the replica count: its floor is what we set.
        if (
            "replicas" in after
            and "autoscaler" not in after
            and target.replicas is not None
            and int(after["replicas"]) != target.replicas
        ):
            return f"{target.replicas} replicas, the step set {after['replicas']}"
    elif record.type is ActionType.SET_ENV:
        container = str(after.get("container", ""))
        now = target.env.get(container, {})
        changed = {k: now.get(k) for k, v in (after.get("env") or {}).items() if now.get(k) != v}
        if changed:
            return f"env of {container} is {changed}, the step set {after.get('env')}"
    elif (
        record.type is ActionType.RESTART
        and "restartedAt" in after
        and target.restarted_at != after["restartedAt"]
    ):
        return f"restartedAt is {target.restarted_at}, the restart set {after['restartedAt']}"
    return None
