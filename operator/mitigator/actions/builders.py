"""Pure builders: given the objects as read from the API and the typed action, what the
action changes.

Each returns a `Change` (JSON-patch operations plus the before/after record) or raises
`ActionRefused`; none does I/O, so every rule here is unit-tested without a server.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime

from mitigator import API_GROUP, API_VERSION
from mitigator.actions.change import (
    ActionRefused,
    Change,
    ObjectChange,
    container_index,
    env_ops,
    images_of,
    pod_labels,
    replicas_of,
    replicas_op,
    revision_of,
    selector_op,
    selects,
)
from mitigator.models import (
    JsonObject,
    MaintenanceAction,
    OtherServices,
    RollbackAction,
    ScaleAction,
    SetEnvAction,
    format_timestamp,
)

RESTARTED_AT_ANNOTATION = "kubectl.kubernetes.io/restartedAt"
POD_TEMPLATE_HASH = "pod-template-hash"


def _comparable_template(template: JsonObject) -> JsonObject:
    clean = copy.deepcopy(template)
    (clean.get("metadata", {}).get("labels") or {}).pop(POD_TEMPLATE_HASH, None)
    return clean


def build_rollback(
    deployment: JsonObject, replica_sets: list[JsonObject], rollback: RollbackAction
) -> Change:
    """What `kubectl rollout undo` does: the whole pod template of the previous (or a given)
    revision's ReplicaSet, without its pod-template-hash label."""
    name = deployment["metadata"]["name"]
    if deployment["spec"].get("paused"):
        raise ActionRefused(f"Deployment {name} is paused; resume it before rolling back")
    current = revision_of(deployment)
    by_revision = {rev: rs for rs in replica_sets if (rev := revision_of(rs)) is not None}
    if rollback.to_revision is not None:
        if rollback.to_revision not in by_revision:
            known = ", ".join(str(r) for r in sorted(by_revision)) or "none"
            raise ActionRefused(
                f"revision {rollback.to_revision} of {name} not found (known: {known})"
            )
        target_revision = rollback.to_revision
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


def build_scale(deployment: JsonObject, scale: ScaleAction, *, max_replicas: int) -> Change:
    """Set the replicas the step asks for, under its own `max` and the policy's cap; an
    increment on a target already at or above the cap changes nothing (refused, with why)."""
    name = deployment["metadata"]["name"]
    current = replicas_of(deployment)
    target = scale.target_replicas(current, max_replicas=max_replicas)
    cap_note = f"requested {target.requested}, capped at maxReplicas {target.limit}"
    if target.replicas == current:
        reason = f" ({cap_note})" if target.capped else ""
        raise ActionRefused(f"Deployment {name} already has {current} replicas{reason}")
    note = f" ({cap_note})" if target.capped else ""
    return Change(
        deployment_ops=[replicas_op(target.replicas)],
        before={"replicas": current},
        after={"replicas": target.replicas, "requested": target.requested, "capped": target.capped},
        message=f"scaled {name} from {current} to {target.replicas} replicas{note}",
    )


def build_restart(deployment: JsonObject, *, now: datetime) -> Change:
    name = deployment["metadata"]["name"]
    template_meta = deployment["spec"]["template"].get("metadata") or {}
    annotations = template_meta.get("annotations")
    stamp = format_timestamp(now)
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


def build_set_env(deployment: JsonObject, set_env: SetEnvAction) -> Change:
    name = deployment["metadata"]["name"]
    env = set_env.env
    index, spec = container_index(deployment, set_env.container)
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
        deployment_ops=env_ops(index, updated),
        before={"container": spec["name"], "env": previous, "unset": unset},
        after={"container": spec["name"], "env": dict(env)},
        message=f"set {', '.join(f'{k}={v}' for k, v in env.items())} on {name}/{spec['name']}",
    )


def build_autoscaled_scale(
    deployment: JsonObject, autoscaler: JsonObject, scale: ScaleAction, *, max_replicas: int
) -> Change:
    """A HorizontalPodAutoscaler owns the replica count: writing replicas would be undone at
    its next sync. Raise its floor (minReplicas, and maxReplicas if the floor passes it) to
    what the step asks, within the same caps; the HPA then scales the Deployment itself."""
    name, hpa = deployment["metadata"]["name"], autoscaler["metadata"]["name"]
    current = replicas_of(deployment)
    low = int(autoscaler["spec"].get("minReplicas", 1))
    high = int(autoscaler["spec"]["maxReplicas"])
    target = scale.target_replicas(max(current, low), max_replicas=max_replicas)
    if target.replicas <= low:
        raise ActionRefused(
            f"HorizontalPodAutoscaler {hpa} owns {name}'s replicas and already keeps at least "
            f"{low} (requested {target.requested}, capped at maxReplicas {target.limit})"
        )
    new_high = max(high, target.replicas)
    ops: list[JsonObject] = [
        {"op": "add", "path": "/spec/minReplicas", "value": target.replicas},
        {"op": "replace", "path": "/spec/maxReplicas", "value": new_high},
    ]
    raised_max = f", maxReplicas {high} -> {new_high}" if new_high != high else ""
    return Change(
        deployment_ops=[],
        before={"autoscaler": hpa, "minReplicas": low, "maxReplicas": high, "replicas": current},
        after={
            "autoscaler": hpa,
            "minReplicas": target.replicas,
            "maxReplicas": new_high,
            "requested": target.requested,
            "capped": target.capped,
        },
        message=(
            f"HorizontalPodAutoscaler {hpa} owns {name}'s replicas: raised its minReplicas from "
            f"{low} to {target.replicas}{raised_max}; it scales {name} from {current}"
        ),
        others=(ObjectChange("HorizontalPodAutoscaler", autoscaler, ops),),
    )


def services_to_switch(
    deployment: JsonObject, services: list[JsonObject], maintenance: MaintenanceAction
) -> list[JsonObject]:
    """The Services maintenance switches: the named one (which must select the target's
    pods) and, as the step says, every other one that selects them too, or a refusal naming
    them; without a name, every Service that selects the pods."""
    name = deployment["metadata"]["name"]
    labels = pod_labels(deployment)
    selecting = [svc for svc in services if selects(svc, labels)]
    names = sorted(svc["metadata"]["name"] for svc in selecting)
    if maintenance.service is None:
        if not selecting:
            raise ActionRefused(f"no Service selects the pods of {name} (labels {labels})")
        return selecting
    named = next((svc for svc in services if svc["metadata"]["name"] == maintenance.service), None)
    if named is None:
        raise ActionRefused(f"Service {maintenance.service} not found")
    if named not in selecting:
        selector = named["spec"].get("selector") or {}
        raise ActionRefused(
            f"Service {maintenance.service} does not select the pods of {name} (its selector "
            f"{selector}, the pods' labels {labels}); switching it would not stop their traffic"
        )
    others = [svc for svc in selecting if svc is not named]
    if others and maintenance.other_services is OtherServices.REFUSE:
        listed = ", ".join(n for n in names if n != maintenance.service)
        raise ActionRefused(
            f"Services {listed} also select the pods of {name}; the step says to refuse "
            "(otherServices: refuse) rather than leave them pointing at pods scaled to 0"
        )
    return [named, *others]


def build_maintenance(
    deployment: JsonObject, services: list[JsonObject], maintenance: MaintenanceAction
) -> Change:
    """Every given Service to the maintenance backend, the target to 0 replicas."""
    name = deployment["metadata"]["name"]
    backend = dict(maintenance.backend_selector)
    replicas = replicas_of(deployment)
    names = ", ".join(svc["metadata"]["name"] for svc in services)
    return Change(
        deployment_ops=[replicas_op(0)],
        before={
            "services": {s["metadata"]["name"]: dict(s["spec"]["selector"]) for s in services},
            "replicas": replicas,
        },
        after={"services": {s["metadata"]["name"]: backend for s in services}, "replicas": 0},
        message=(
            f"maintenance mode: Service(s) {names} now select {backend} (503 + Retry-After), "
            f"{name} scaled from {replicas} to 0"
        ),
        others=tuple(ObjectChange("Service", svc, [selector_op(backend)]) for svc in services),
    )


def isolation_name(incident: str, action_id: str) -> str:
    """The NetworkPolicy of an isolate step: `<incident>-isolate-<step>`, within 253."""
    suffix = f"-isolate-{action_id}"
    return f"{incident[: 253 - len(suffix)]}{suffix}"


def build_isolate(deployment: JsonObject, *, name: str) -> Change:
    """Nothing on the Deployment changes (its pods stay, for forensics): the record says which
    NetworkPolicy cuts them off, so the resolve lifts exactly that one."""
    selector = deployment["spec"]["selector"]
    return Change(
        deployment_ops=[],
        before={"networkPolicy": name, "isolated": False},
        after={"networkPolicy": name, "isolated": True, "podSelector": selector},
        message=(
            f"isolated the pods of {deployment['metadata']['name']}: NetworkPolicy {name} denies "
            "all their ingress and egress; the pods are kept for forensics"
        ),
    )


def isolation_policy(
    deployment: JsonObject, *, name: str, incident: str, incident_uid: str
) -> JsonObject:
    """A NetworkPolicy selecting exactly what the Deployment selects, with both policy types
    and no rule: every connection to and from those pods is denied. Owned by the Incident, so
    it cannot outlive it."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name,
            "namespace": deployment["metadata"]["namespace"],
            "labels": {f"{API_GROUP}/isolates": deployment["metadata"]["name"]},
            "annotations": {f"{API_GROUP}/incident": incident},
            "ownerReferences": [
                {
                    "apiVersion": f"{API_GROUP}/{API_VERSION}",
                    "kind": "Incident",
                    "name": incident,
                    "uid": incident_uid,
                }
            ],
        },
        "spec": {
            "podSelector": copy.deepcopy(deployment["spec"]["selector"]),
            "policyTypes": ["Ingress", "Egress"],
        },
    }
