"""What the API says about a target: pod health, when it last rolled out, its revision and
images. One GET of the Deployment per snapshot; its pods and ReplicaSets are listed only if
the tick asks (classification's crash-loop and OOM check, a rule on the last rollout, a
rollback), once each."""

from __future__ import annotations

from datetime import datetime

from mitigator.actions.builders import RESTARTED_AT_ANNOTATION
from mitigator.actions.change import env_of, images_of, replicas_of, revision_of
from mitigator.actions.marker import records
from mitigator.k8s import KubeClient, NotFound
from mitigator.metrics.pods import pod_health, status_health
from mitigator.models import parse_timestamp
from mitigator.models.evidence import PodHealth, TargetRead, TargetSnapshot
from mitigator.models.gitops import gitops_owner


class _Detail:
    """The on-demand part of a snapshot (see TargetDetail)."""

    def __init__(self, read: TargetRead) -> None:
        self.read = read

    def pod_health(self) -> PodHealth:
        return pod_health(self.read.deployment, self.read.pods)

    def last_rollout_at(self) -> datetime | None:
        # The newest ReplicaSet of the Deployment was created by its latest rollout.
        created = [
            parse_timestamp(rs["metadata"]["creationTimestamp"]) for rs in self.read.replica_sets
        ]
        return max(created) if created else None


class ClusterObserver:
    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube

    def snapshot(self, namespace: str, name: str) -> TargetSnapshot:
        try:
            deployment = self.kube.read_deployment(namespace, name)
        except NotFound:
            return TargetSnapshot(exists=False)
        metadata = deployment["metadata"]
        template = deployment["spec"]["template"]
        return TargetSnapshot(
            exists=True,
            uid=str(metadata["uid"]),
            labels=dict(metadata.get("labels") or {}),
            pods=status_health(deployment),
            revision=revision_of(deployment),
            images=images_of(template),
            replicas=replicas_of(deployment),
            env=env_of(template),
            restarted_at=(template.get("metadata") or {})
            .get("annotations", {})
            .get(RESTARTED_AT_ANNOTATION),
            gitops=gitops_owner(
                metadata.get("labels") or {},
                metadata.get("annotations") or {},
                namespace=namespace,
            ),
            record_keys=frozenset(str(r.get("key", "")) for r in records(deployment)),
            detail=_Detail(self.kube.target_read(deployment)),
        )
