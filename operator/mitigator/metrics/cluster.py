"""What the API says about a target: pod health, when it last rolled out, its revision and
images."""

from __future__ import annotations

from mitigator.actions.builders import RESTARTED_AT_ANNOTATION
from mitigator.actions.change import env_of, images_of, replicas_of, revision_of
from mitigator.actions.marker import records
from mitigator.k8s import KubeClient, NotFound
from mitigator.metrics.pods import pod_health
from mitigator.models import parse_timestamp
from mitigator.models.evidence import TargetSnapshot
from mitigator.models.gitops import gitops_owner


class ClusterObserver:
    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube

    def snapshot(self, namespace: str, name: str) -> TargetSnapshot:
        try:
            deployment = self.kube.read_deployment(namespace, name)
        except NotFound:
            return TargetSnapshot(exists=False)
        replica_sets = self.kube.replica_sets_of(deployment)
        # The newest ReplicaSet of the Deployment was created by its latest rollout.
        created = [parse_timestamp(rs["metadata"]["creationTimestamp"]) for rs in replica_sets]
        return TargetSnapshot(
            exists=True,
            uid=str(deployment["metadata"]["uid"]),
            labels=dict(deployment["metadata"].get("labels") or {}),
            pods=pod_health(deployment, self.kube.pods_of(deployment)),
            last_rollout_at=max(created) if created else None,
            revision=revision_of(deployment),
            images=images_of(deployment["spec"]["template"]),
            replicas=replicas_of(deployment),
            env=env_of(deployment["spec"]["template"]),
            restarted_at=(deployment["spec"]["template"].get("metadata") or {})
            .get("annotations", {})
            .get(RESTARTED_AT_ANNOTATION),
            gitops=gitops_owner(
                deployment["metadata"].get("labels") or {},
                deployment["metadata"].get("annotations") or {},
                namespace=namespace,
            ),
            record_keys=frozenset(str(r.get("key", "")) for r in records(deployment)),
        )
