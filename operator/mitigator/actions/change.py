"""What one action changes, as the pure builders describe it, and the facts they read off a
Deployment (revision, images)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mitigator.models import JsonObject

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"


class ActionRefused(ValueError):
    """The action cannot be applied to this target as it is; the message says why."""


OtherKind = Literal["Service", "HorizontalPodAutoscaler"]


@dataclass(frozen=True)
class ObjectChange:
    """A change to an object beside the Deployment (a Service, an autoscaler), with the object
    as it was read: the write tests it, and carries the action's record to it too."""

    kind: OtherKind
    obj: JsonObject
    ops: list[JsonObject]

    @property
    def guarded(self) -> tuple[str, ...]:
        """The fields the change decides on, tested as read (see marker.guard_ops)."""
        if self.kind == "Service":
            return ("/spec/selector",)
        return ("/spec/minReplicas", "/spec/maxReplicas")

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])


@dataclass(frozen=True)
class Change:
    """JSON-patch operations for the Deployment (and the objects beside it), with the
    before/after record and a sentence for people."""

    deployment_ops: list[JsonObject]
    before: JsonObject
    after: JsonObject
    message: str
    others: tuple[ObjectChange, ...] = field(default=())


def revision_of(obj: JsonObject) -> int | None:
    raw = (obj.get("metadata", {}).get("annotations") or {}).get(REVISION_ANNOTATION)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def images_of(template: JsonObject) -> dict[str, str]:
    return {c["name"]: c.get("image", "") for c in template.get("spec", {}).get("containers", [])}


def env_of(template: JsonObject) -> dict[str, dict[str, str]]:
    """Each container's literal env values (valueFrom entries are not ours to compare)."""
    return {
        c["name"]: {e["name"]: e["value"] for e in c.get("env") or [] if "value" in e}
        for c in template.get("spec", {}).get("containers", [])
    }


def replicas_of(deployment: JsonObject) -> int:
    """spec.replicas, which the API server defaults to 1."""
    return int(deployment["spec"].get("replicas", 1))


def container_index(deployment: JsonObject, container: str | None) -> tuple[int, JsonObject]:
    """The position and spec of the named container (the first one if None)."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    if container is None:
        return 0, containers[0]
    for index, candidate in enumerate(containers):
        if candidate["name"] == container:
            return index, candidate
    names = ", ".join(c["name"] for c in containers)
    raise ActionRefused(f"container {container!r} not found (containers: {names})")


def env_ops(index: int, env: list[JsonObject]) -> list[JsonObject]:
    # "add" on an existing member replaces it, and creates it when the list is absent.
    return [{"op": "add", "path": f"/spec/template/spec/containers/{index}/env", "value": env}]


def replicas_op(replicas: int) -> JsonObject:
    return {"op": "replace", "path": "/spec/replicas", "value": replicas}


def selector_op(selector: JsonObject) -> JsonObject:
    return {"op": "add", "path": "/spec/selector", "value": selector}


def pod_labels(deployment: JsonObject) -> dict[str, str]:
    return dict((deployment["spec"]["template"].get("metadata") or {}).get("labels") or {})


def selects(service: JsonObject, labels: dict[str, str]) -> bool:
    """The Service sends traffic to pods with these labels (an empty selector selects none:
    such a Service has hand-made endpoints)."""
    selector = service["spec"].get("selector") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())
