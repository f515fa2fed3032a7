"""Pure builders that undo a recorded action from the state recorded before it."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mitigator.actions.change import (
    ActionRefused,
    Change,
    container_index,
    env_ops,
    replicas_of,
    replicas_op,
    selector_op,
)
from mitigator.models import REVERTIBLE_ACTION_TYPES, ActionType, JsonObject

# (the Deployment, the state before the action, the Service it switched if any) → the change
RevertBuilder = Callable[[JsonObject, JsonObject, JsonObject | None], Change]


def revert_scale(deployment: JsonObject, before: JsonObject, _: JsonObject | None) -> Change:
    name = deployment["metadata"]["name"]
    current = replicas_of(deployment)
    return Change(
        deployment_ops=[replicas_op(before["replicas"])],
        before={"replicas": current},
        after={"replicas": before["replicas"]},
        message=f"reverted scale of {name}: {current} -> {before['replicas']} replicas",
    )


def revert_set_env(deployment: JsonObject, before: JsonObject, _: JsonObject | None) -> Change:
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
    deployment: JsonObject, before: JsonObject, service: JsonObject | None
) -> Change:
    if service is None:
        raise ActionRefused(f"Service {before.get('service')} to switch back is gone")
    name = deployment["metadata"]["name"]
    service_name = service["metadata"]["name"]
    return Change(
        deployment_ops=[replicas_op(before["replicas"])],
        service_name=service_name,
        service_ops=[selector_op(before["selector"])],
        before={
            "selector": service["spec"].get("selector") or {},
            "replicas": replicas_of(deployment),
        },
        after={"selector": before["selector"], "replicas": before["replicas"]},
        message=(
            f"maintenance off: Service {service_name} selects {before['selector']} again, "
            f"{name} back to {before['replicas']} replicas"
        ),
    )


REVERT_BUILDERS: Mapping[ActionType, RevertBuilder] = {
    ActionType.SCALE: revert_scale,
    ActionType.SET_ENV: revert_set_env,
    ActionType.MAINTENANCE: revert_maintenance,
}
assert frozenset(REVERT_BUILDERS) == REVERTIBLE_ACTION_TYPES, "one revert per revertible type"


def build_revert(
    action_type: ActionType,
    deployment: JsonObject,
    *,
    before: JsonObject,
    service: JsonObject | None = None,
) -> Change:
    """Undo a recorded action of `action_type` from its `before` snapshot."""
    builder = REVERT_BUILDERS.get(action_type)
    if builder is None:
        revertible = ", ".join(sorted(REVERTIBLE_ACTION_TYPES))
        raise ActionRefused(f"{action_type} is not revertible (revertible: {revertible})")
    return builder(deployment, before, service)
