"""Pure builders that undo a recorded action from the state recorded before it."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mitigator.actions.change import (
    ActionRefused,
    Change,
    ObjectChange,
    OtherKind,
    container_index,
    env_ops,
    replicas_of,
    replicas_op,
    selector_op,
)
from mitigator.models import (
    ALWAYS_REVERTED_ACTION_TYPES,
    REVERTIBLE_ACTION_TYPES,
    ActionType,
    JsonObject,
)

# (the Deployment, the state before the action, the objects beside it by name) → the change
RevertBuilder = Callable[[JsonObject, JsonObject, Mapping[str, JsonObject]], Change]


def others_named(before: JsonObject) -> dict[str, OtherKind]:
    """The objects beside the Deployment a recorded action changed, to read for its revert."""
    named: dict[str, OtherKind] = {name: "Service" for name in before.get("services") or {}}
    if before.get("autoscaler"):
        named[str(before["autoscaler"])] = "HorizontalPodAutoscaler"
    return named


def revert_scale(
    deployment: JsonObject, before: JsonObject, others: Mapping[str, JsonObject]
) -> Change:
    name = deployment["metadata"]["name"]
    if before.get("autoscaler"):
        return _restore_autoscaler(deployment, before, others)
    current = replicas_of(deployment)
    return Change(
        deployment_ops=[replicas_op(before["replicas"])],
        before={"replicas": current},
        after={"replicas": before["replicas"]},
        message=f"reverted scale of {name}: {current} -> {before['replicas']} replicas",
    )


def _restore_autoscaler(
    deployment: JsonObject, before: JsonObject, others: Mapping[str, JsonObject]
) -> Change:
    hpa = str(before["autoscaler"])
    if hpa not in others:
        raise ActionRefused(f"HorizontalPodAutoscaler {hpa} to restore is gone")
    spec = others[hpa]["spec"]
    low, high = before["minReplicas"], before["maxReplicas"]
    return Change(
        deployment_ops=[],
        before={
            "autoscaler": hpa,
            "minReplicas": spec.get("minReplicas", 1),
            "maxReplicas": spec["maxReplicas"],
        },
        after={"autoscaler": hpa, "minReplicas": low, "maxReplicas": high},
        message=(
            f"reverted scale of {deployment['metadata']['name']}: HorizontalPodAutoscaler {hpa} "
            f"back to minReplicas {low}, maxReplicas {high}"
        ),
        others=(
            ObjectChange(
                "HorizontalPodAutoscaler",
                others[hpa],
                [
                    {"op": "add", "path": "/spec/minReplicas", "value": low},
                    {"op": "replace", "path": "/spec/maxReplicas", "value": high},
                ],
            ),
        ),
    )


def revert_set_env(
    deployment: JsonObject, before: JsonObject, _: Mapping[str, JsonObject]
) -> Change:
    name = deployment["metadata"]["name"]
    index, spec = container_index(deployment, before["container"])
    previous: Mapping[str, str] = before.get("env") or {}
    unset = set(before.get("unset") or ())
    restored = [
        {**item, "value": previous[item["name"]]} if item["name"] in previous else item
        for item in spec.get("env") or []
        if item["name"] not in unset
    ]
    current_values = {item["name"]: item.get("value") for item in spec.get("env") or []}
    touched = sorted({*previous, *unset})
    unset_note = f", unset {', '.join(sorted(unset))}" if unset else ""
    return Change(
        deployment_ops=env_ops(index, restored),
        before={
            "container": spec["name"],
            "env": {k: current_values.get(k) for k in touched if k in current_values},
        },
        after={"container": spec["name"], "env": dict(previous), "unset": sorted(unset)},
        message=f"restored env {dict(previous)}{unset_note} on {name}/{spec['name']}",
    )


def revert_maintenance(
    deployment: JsonObject, before: JsonObject, others: Mapping[str, JsonObject]
) -> Change:
    name = deployment["metadata"]["name"]
    selectors: Mapping[str, JsonObject] = before["services"]
    missing = sorted(set(selectors) - set(others))
    if missing:
        raise ActionRefused(f"Service(s) {', '.join(missing)} to switch back are gone")
    return Change(
        deployment_ops=[replicas_op(before["replicas"])],
        before={
            "services": {n: others[n]["spec"].get("selector") or {} for n in selectors},
            "replicas": replicas_of(deployment),
        },
        after={"services": dict(selectors), "replicas": before["replicas"]},
        message=(
            f"maintenance off: Service(s) {', '.join(selectors)} select their pods again, "
            f"{name} back to {before['replicas']} replicas"
        ),
        others=tuple(
            ObjectChange("Service", others[n], [selector_op(selector)])
            for n, selector in selectors.items()
        ),
    )


def revert_isolate(
    deployment: JsonObject, before: JsonObject, _: Mapping[str, JsonObject]
) -> Change:
    """The record of lifting the isolation; the executor deletes the NetworkPolicy."""
    name = str(before["networkPolicy"])
    return Change(
        deployment_ops=[],
        before={"networkPolicy": name, "isolated": True},
        after={"networkPolicy": name, "isolated": False},
        message=(
            f"isolation lifted: NetworkPolicy {name} deleted, the pods of "
            f"{deployment['metadata']['name']} reachable again"
        ),
    )


REVERT_BUILDERS: Mapping[ActionType, RevertBuilder] = {
    ActionType.SCALE: revert_scale,
    ActionType.SET_ENV: revert_set_env,
    ActionType.MAINTENANCE: revert_maintenance,
    ActionType.ISOLATE: revert_isolate,
}
assert frozenset(REVERT_BUILDERS) == REVERTIBLE_ACTION_TYPES | ALWAYS_REVERTED_ACTION_TYPES, (
    "one revert per revertible type"
)


def build_revert(
    action_type: ActionType,
    deployment: JsonObject,
    *,
    before: JsonObject,
    others: Mapping[str, JsonObject],
) -> Change:
    """Undo a recorded action of `action_type` from its `before` snapshot; `others` are the
    objects beside the Deployment it changed (`others_named`), as read now."""
    builder = REVERT_BUILDERS.get(action_type)
    if builder is None:  # a rollback or a restart: the fix itself
        revertible = ", ".join(sorted(REVERTIBLE_ACTION_TYPES))
        raise ActionRefused(f"{action_type} is not revertible (revertible: {revertible})")
    return builder(deployment, before, others)
