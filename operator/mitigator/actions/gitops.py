"""Suspending a GitOps tool's reconciliation for an incident, and restoring it after: Argo CD's
automated self-heal on the Application, Flux's `suspend` on the Kustomization or HelmRelease.

Like every action: one JSON patch that tests what it read, makes the change and records it
(with the state before) on the tool's object, exactly once per incident.
"""

from __future__ import annotations

from collections.abc import Callable

from mitigator.actions import marker
from mitigator.actions.change import ActionRefused
from mitigator.actions.outcomes import answered
from mitigator.k8s import KubeClient
from mitigator.k8s.calls import CustomResource
from mitigator.models import ActionState, JsonObject, format_timestamp
from mitigator.models.execution import ActionOutcome, GitOpsRequest
from mitigator.models.gitops import GitOpsOwner

RESOURCES: dict[str, CustomResource] = {
    "Application": ("argoproj.io", "v1alpha1", "applications"),
    "Kustomization": ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
    "HelmRelease": ("helm.toolkit.fluxcd.io", "v2", "helmreleases"),
}
_SELF_HEAL = "/spec/syncPolicy/automated/selfHeal"

# (the tool's object as read) -> (JSON-patch ops, state before, state after)
Switch = tuple[list[JsonObject], JsonObject, JsonObject]


def suspension(owner: GitOpsOwner, obj: JsonObject) -> Switch:
    """What suspends the tool: Argo CD's self-heal off (automated sync of new commits goes
    on; drift is no longer reverted), Flux's reconciliation suspended."""
    if owner.kind == "Application":
        automated = (obj["spec"].get("syncPolicy") or {}).get("automated")
        if not automated or not automated.get("selfHeal"):
            raise ActionRefused(f"{owner} does not self-heal: nothing to suspend")
        return (
            [
                {"op": "test", "path": _SELF_HEAL, "value": True},
                {"op": "replace", "path": _SELF_HEAL, "value": False},
            ],
            {"selfHeal": True},
            {"selfHeal": False},
        )
    if obj["spec"].get("suspend"):
        raise ActionRefused(f"{owner} is already suspended: nothing to suspend")
    return (
        [{"op": "add", "path": "/spec/suspend", "value": True}],
        {"suspend": False},
        {"suspend": True},
    )


def restoration(owner: GitOpsOwner, obj: JsonObject, before: JsonObject) -> Switch:
    """Back to the state recorded before the suspension, if nobody changed it since."""
    if owner.kind == "Application":
        automated = (obj["spec"].get("syncPolicy") or {}).get("automated") or {}
        if automated.get("selfHeal") is not False:
            raise ActionRefused(f"{owner}'s self-heal was changed since; left as it is")
        return (
            [
                {"op": "test", "path": _SELF_HEAL, "value": False},
                {"op": "replace", "path": _SELF_HEAL, "value": before["selfHeal"]},
            ],
            {"selfHeal": False},
            dict(before),
        )
    if obj["spec"].get("suspend") is not True:
        raise ActionRefused(f"{owner} was resumed since; left as it is")
    return (
        [
            {"op": "test", "path": "/spec/suspend", "value": True},
            {"op": "replace", "path": "/spec/suspend", "value": before["suspend"]},
        ],
        {"suspend": True},
        dict(before),
    )


class GitOpsSwitch:
    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube

    def suspend(self, request: GitOpsRequest) -> ActionOutcome:
        return self._switch(request, lambda obj: suspension(request.owner, obj), "suspended")

    def restore(self, request: GitOpsRequest) -> ActionOutcome:
        before = request.before or {}
        return self._switch(
            request, lambda obj: restoration(request.owner, obj, before), "restored"
        )

    def _switch(
        self, request: GitOpsRequest, decide: Callable[[JsonObject], Switch], done: str
    ) -> ActionOutcome:
        return answered(lambda: self._write(request, decide, done))

    def _write(
        self, request: GitOpsRequest, decide: Callable[[JsonObject], Switch], done: str
    ) -> ActionOutcome:
        owner = request.owner
        resource = RESOURCES[owner.kind]
        obj = self.kube.read_custom(resource, owner.namespace, owner.name)
        earlier = marker.find_record(obj, request.key)
        if earlier is not None:
            return ActionOutcome(
                ActionState.APPLIED,
                f"{owner} already {done} at {earlier.get('at')}",
                before=earlier.get("before", {}),
                after=earlier.get("after", {}),
                recovered=True,
            )
        ops, before, after = decide(obj)
        message = f"{owner} {done} ({before} -> {after})"
        record = {
            "key": request.key,
            "type": "gitops",
            "at": format_timestamp(request.now),
            "before": before,
            "after": after,
            "message": message,
        }
        self.kube.patch_custom(
            resource,
            owner.namespace,
            owner.name,
            [*ops, *marker.guard_ops(obj, ()), *marker.record_ops(obj, record)],
        )
        return ActionOutcome(ActionState.APPLIED, message, before=before, after=after)
