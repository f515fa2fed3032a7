"""Pod health of a Deployment, read from the Deployment's status and its pods (pure)."""

from __future__ import annotations

from typing import Any

from mitigator.models.evidence import PodHealth

JsonObject = dict[str, Any]


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
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    crash_looping = oom_killed = restarts = ready = 0
    for pod in live:
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        conditions = (pod.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            ready += 1
        for container in statuses:
            restarts += int(container.get("restartCount", 0))
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") == "CrashLoopBackOff":
                crash_looping += 1
            terminated = (container.get("lastState") or {}).get("terminated") or {}
            if terminated.get("reason") == "OOMKilled":
                oom_killed += 1
    return PodHealth(
        desired=int(deployment["spec"].get("replicas", 1)),
        ready=ready,
        crash_looping=crash_looping,
        oom_killed=oom_killed,
        restarts=restarts,
        rollout_in_progress=not rollout_complete(deployment),
    )
