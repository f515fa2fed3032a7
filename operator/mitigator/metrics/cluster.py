"""What the API says about a target: pod health, the age of its last rollout, and the
actions mitigator already recorded on it (for cooldowns and hourly caps)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mitigator.actions import marker
from mitigator.actions.builders import revision_of
from mitigator.k8s import KubeClient, NotFound
from mitigator.metrics.pods import pod_health
from mitigator.models.evidence import PodHealth

JsonObject = dict[str, Any]


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class TargetSnapshot:
    """One read of the target, so a tick does not read the same objects several times."""

    exists: bool
    labels: dict[str, str]
    pods: PodHealth | None
    last_rollout_at: datetime | None
    action_times: tuple[datetime, ...]
    revision: int | None


class ClusterObserver:
    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube

    def snapshot(self, namespace: str, name: str) -> TargetSnapshot:
        try:
            deployment = self.kube.read_deployment(namespace, name)
        except NotFound:
            return TargetSnapshot(False, {}, None, None, (), None)
        replica_sets = self.kube.replica_sets_of(deployment)
        # The newest ReplicaSet of the Deployment was created by its latest rollout.
        created = [_parse_time(rs["metadata"]["creationTimestamp"]) for rs in replica_sets]
        times = tuple(
            _parse_time(str(r["at"]))
            for r in marker.records(deployment)
            if r.get("at") and not str(r.get("key", "")).endswith("/revert")
        )
        return TargetSnapshot(
            exists=True,
            labels=dict(deployment["metadata"].get("labels") or {}),
            pods=pod_health(deployment, self.kube.pods_of(deployment)),
            last_rollout_at=max(created) if created else None,
            action_times=times,
            revision=revision_of(deployment),
        )


def age(moment: datetime | None, now: datetime) -> timedelta | None:
    return None if moment is None else now - moment
