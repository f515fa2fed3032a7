"""Pure builders: given the objects as read from the API, what one action changes.

Each returns a ``Change`` (JSON-patch operations plus the before/after record) or raises
``ActionRefused``; none does I/O, so every rule here is unit-tested without a server.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

JsonObject = dict[str, Any]

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
RESTARTED_AT_ANNOTATION = "kubectl.kubernetes.io/restartedAt"
POD_TEMPLATE_HASH = "pod-template-hash"


class ActionRefused(ValueError):
    """The action cannot be applied to this target as it is; the message says why."""


@dataclass(frozen=True)
class Change:
    deployment_ops: list[JsonObject]
    before: JsonObject
    after: JsonObject
    message: str
    service_name: str | None = None
    service_ops: list[JsonObject] = field(default_factory=list)


def revision_of(obj: JsonObject) -> int | None:
    raw = (obj.get("metadata", {}).get("annotations") or {}).get(REVISION_ANNOTATION)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def images_of(template: JsonObject) -> dict[str, str]:
    return {c["name"]: c.get("image", "") for c in template.get("spec", {}).get("containers", [])}


def _comparable_template(template: JsonObject) -> JsonObject:
    clean = copy.deepcopy(template)
    (clean.get("metadata", {}).get("labels") or {}).pop(POD_TEMPLATE_HASH, None)
    return clean


def build_rollback(
    deployment: JsonObject, replica_sets: list[JsonObject], *, to_revision: int | None
) -> Change:
    """What `kubectl rollout undo` does: the whole pod template of the previous (or a given)
    revision's ReplicaSet, without its pod-template-hash label."""
    name = deployment["metadata"]["name"]
    if deployment["spec"].get("paused"):
        raise ActionRefused(f"Deployment {name} is paused; resume it before rolling back")
    current = revision_of(deployment)
    by_revision = {rev: rs for rs in replica_sets if (rev := revision_of(rs)) is not None}
    if to_revision is not None:
        if to_revision not in by_revision:
            known = ", ".join(str(r) for r in sorted(by_revision)) or "none"
            raise ActionRefused(f"revision {to_revision} of {name} not found (known: {known})")
        target_revision = to_revision
    else:
        older = [rev for rev in by_revision if current is None or rev < current]
        if not older:
            raise ActionRefused(f"Deployment {name} has no previous revision to roll back to")
        target_revision = max(older)
    template = _comparable_template(by_revision[target_revision]["spec"]["template"])
    current_template = deployment["spec"]["template"]
    if template == _comparable_template(current_template):
        raise ActionRefused(
            f"Deployment {name} already runs the template of revision {target_revision}"
        )
    return Change(
        deployment_ops=[{"op": "replace", "path": "/spec/template", "value": template}],
        before={"revision": current, "images": images_of(current_template)},
        after={"rolledBackToRevision": target_revision, "images": images_of(template)},
        message=(
            f"rolled back {name} from revision {current} to the template of revision "
            f"{target_revision} ({_describe_images(images_of(template))})"
        ),
    )


def _describe_images(images: Mapping[str, str]) -> str:
    return ", ".join(f"{c}={i}" for c, i in images.items())


def build_scale(
    deployment: JsonObject, *, replicas: int | None, increment: int | None, cap: int
) -> Change:
    name = deployment["metadata"]["name"]
    current = int(deployment["spec"].get("replicas", 1))
    if (replicas is None) == (increment is None):
        raise ActionRefused("scale needs exactly one of replicas or increment")
    requested = replicas if replicas is not None else current + (increment or 0)
    wanted = min(requested, cap)
    capped = wanted < requested
    if wanted == current:
        raise ActionRefused(
            f"Deployment {name} already has {current} replicas"
            + (f" (request of {requested} capped at maxReplicas {cap})" if capped else "")
        )
    note = f" (requested {requested}, capped at maxReplicas {cap})" if capped else ""
    return Change(
        deployment_ops=[{"op": "replace", "path": "/spec/replicas", "value": wanted}],
        before={"replicas": current},
        after={"replicas": wanted, "requested": requested, "capped": capped},
        message=f"scaled {name} from {current} to {wanted} replicas{note}",
    )


def build_restart(deployment: JsonObject, *, now: datetime) -> Change:
    name = deployment["metadata"]["name"]
    template_meta = deployment["spec"]["template"].get("metadata") or {}
    annotations = template_meta.get("annotations")
    stamp = now.isoformat().replace("+00:00", "Z")
    if annotations is None:
        # A Deployment's template always has metadata (its labels must match the selector).
        ops: list[JsonObject] = [
            {
                "op": "add",
                "path": "/spec/template/metadata/annotations",
                "value": {RESTARTED_AT_ANNOTATION: stamp},
            }
        ]
    else:
        ops = [
            {
                "op": "add",
                "path": "/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt",
                "value": stamp,
            }
        ]
    return Change(
        deployment_ops=ops,
        before={"restartedAt": (annotations or {}).get(RESTARTED_AT_ANNOTATION)},
        after={"restartedAt": stamp},
        message=f"rolling restart of {name} (restartedAt={stamp})",
    )


def _container_index(deployment: JsonObject, container: str | None) -> tuple[int, JsonObject]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    if container is None:
        return 0, containers[0]
    for index, candidate in enumerate(containers):
        if candidate["name"] == container:
            return index, candidate
    names = ", ".join(c["name"] for c in containers)
    raise ActionRefused(f"container {container!r} not found (containers: {names})")


def _env_ops(index: int, env: list[JsonObject]) -> list[JsonObject]:
    # "add" on an existing member replaces it, and creates it when the list is absent.
    return [{"op": "add", "path": f"/spec/template/spec/containers/{index}/env", "value": env}]


def build_set_env(
    deployment: JsonObject, *, container: str | None, env: Mapping[str, str]
) -> Change:
    name = deployment["metadata"]["name"]
    index, spec = _container_index(deployment, container)
    current = [dict(item) for item in spec.get("env") or []]
    by_name = {item["name"]: item for item in current}
    for key in env:
        if "valueFrom" in by_name.get(key, {}):
            raise ActionRefused(
                f"env {key} of {name}/{spec['name']} comes from valueFrom; not overriding it"
            )
    # Unset variables are listed apart: a null inside a status object would be dropped.
    previous = {k: str(by_name[k].get("value", "")) for k in env if k in by_name}
    unset = sorted(k for k in env if k not in by_name)
    if not unset and all(previous[key] == value for key, value in env.items()):
        raise ActionRefused(f"{name}/{spec['name']} already has {dict(env)}")
    updated = [
        {**item, "value": env[item["name"]]} if item["name"] in env else item for item in current
    ]
    updated += [{"name": key, "value": value} for key, value in env.items() if key not in by_name]
    return Change(
        deployment_ops=_env_ops(index, updated),
        before={"container": spec["name"], "env": previous, "unset": unset},
        after={"container": spec["name"], "env": dict(env)},
        message=f"set {', '.join(f'{k}={v}' for k, v in env.items())} on {name}/{spec['name']}",
    )


def build_maintenance(
    deployment: JsonObject, service: JsonObject, *, backend_selector: Mapping[str, str]
) -> Change:
    name = deployment["metadata"]["name"]
    service_name = service["metadata"]["name"]
    selector = dict(service["spec"].get("selector") or {})
    if selector == dict(backend_selector):
        raise ActionRefused(f"Service {service_name} already points at the maintenance backend")
    replicas = int(deployment["spec"].get("replicas", 1))
    return Change(
        deployment_ops=[{"op": "replace", "path": "/spec/replicas", "value": 0}],
        service_name=service_name,
        service_ops=[{"op": "add", "path": "/spec/selector", "value": dict(backend_selector)}],
        before={"service": service_name, "selector": selector, "replicas": replicas},
        after={"service": service_name, "selector": dict(backend_selector), "replicas": 0},
        message=(
            f"maintenance mode: Service {service_name} now selects {dict(backend_selector)} "
            f"(503 + Retry-After), {name} scaled from {replicas} to 0"
        ),
    )


REVERTIBLE = ("scale", "setEnv", "maintenance")


def build_revert(
    action_type: str,
    deployment: JsonObject,
    *,
    before: JsonObject,
    service: JsonObject | None = None,
) -> Change:
    """Undo a recorded action from its ``before`` snapshot."""
    name = deployment["metadata"]["name"]
    if action_type == "scale":
        current = int(deployment["spec"].get("replicas", 1))
        return Change(
            deployment_ops=[
                {"op": "replace", "path": "/spec/replicas", "value": before["replicas"]}
            ],
            before={"replicas": current},
            after={"replicas": before["replicas"]},
            message=f"reverted scale of {name}: {current} -> {before['replicas']} replicas",
        )
    if action_type == "setEnv":
        index, spec = _container_index(deployment, before["container"])
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
            deployment_ops=_env_ops(index, restored),
            before={
                "container": spec["name"],
                "env": {k: current_values.get(k) for k in touched if k in current_values},
            },
            after={"container": spec["name"], "env": dict(previous), "unset": sorted(unset)},
            message=f"restored env {dict(previous)}{unset_note} on {name}/{spec['name']}",
        )
    if action_type == "maintenance":
        assert service is not None, "maintenance revert needs the Service"
        return Change(
            deployment_ops=[
                {"op": "replace", "path": "/spec/replicas", "value": before["replicas"]}
            ],
            service_name=service["metadata"]["name"],
            service_ops=[{"op": "add", "path": "/spec/selector", "value": before["selector"]}],
            before={
                "selector": service["spec"].get("selector") or {},
                "replicas": int(deployment["spec"].get("replicas", 0)),
            },
            after={"selector": before["selector"], "replicas": before["replicas"]},
            message=(
                f"maintenance off: Service {service['metadata']['name']} selects "
                f"{before['selector']} again, {name} back to {before['replicas']} replicas"
            ),
        )
    raise ActionRefused(f"{action_type} is not revertible (revertible: {', '.join(REVERTIBLE)})")
