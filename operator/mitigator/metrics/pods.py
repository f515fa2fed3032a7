"""Pod health of a Deployment, read from its spec, its status and its pods (pure)."""

from __future__ import annotations

from mitigator.models import JsonObject
from mitigator.models.evidence import PodHealth


def rollout_complete(deployment: JsonObject) -> bool:
    """The test `kubectl rollout status` applies."""
    spec, status = deployment["spec"], deployment.get("status") or {}
    desired = int(spec.get("replicas", 1))
    return (
        int(status.get("observedGeneration", 0)) >= int(deployment["metadata"].get("generation", 0))
        and int(status.get("updatedReplicas", 0)) == desired
        and int(status.get("replicas", 0)) == desired
        and int(status.get("availableReplicas", 0)) == desired
    )


def pod_health(deployment: JsonObject, pods: list[JsonObject]) -> PodHealth:
    """Counts per pod (a pod with two crash-looping containers is one crash-looping pod).
    Terminating pods are left out: during a rollout they are on their way out."""
    crash_looping = oom_killed = restarts = ready = 0
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        status = pod.get("status") or {}
        containers = [
            *(status.get("containerStatuses") or []),
            *(status.get("initContainerStatuses") or []),
        ]
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        ):
            ready += 1
        if any(
            ((c.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
            for c in containers
        ):
            crash_looping += 1
        if any(
            ((c.get(key) or {}).get("terminated") or {}).get("reason") == "OOMKilled"
            for c in containers
            for key in ("state", "lastState")
        ):
            oom_killed += 1
        restarts += sum(int(c.get("restartCount", 0)) for c in containers)
    return PodHealth(
        desired=int(deployment["spec"].get("replicas", 1)),
        ready=ready,
        crash_looping=crash_looping,
        oom_killed=oom_killed,
        restarts=restarts,
        rollout_in_progress=not rollout_complete(deployment),
    )


def status_health(deployment: JsonObject) -> PodHealth:
    """The counts the Deployment's status gives, without reading a pod: desired, ready (the
    ReplicaSet controller counts ready pods, leaving terminating ones out, as `pod_health`
    does) and whether the rollout is complete. Crash loops, OOM kills and restarts are only
    in the pods: `pod_health` reads them."""
    status = deployment.get("status") or {}
    return PodHealth(
        desired=int(deployment["spec"].get("replicas", 1)),
        ready=int(status.get("readyReplicas", 0)),
        rollout_in_progress=not rollout_complete(deployment),
    )
