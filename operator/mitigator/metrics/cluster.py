"""What the API says about a target: pod health, when it last rolled out, its revision and
images. One GET of the Deployment per snapshot; its pods and ReplicaSets are listed only if
the tick asks (classification's crash-loop and OOM check, a rule on the last rollout, a
rollback), once each.

A Deployment the watch shows unchanged since the last GET (the same resourceVersion) is not
read again: an Incident waiting for a rollout or in its verification window ticks every 2 s,
and at 1,000 of them those GETs were most of what the API server did (10.8 per Incident).
What the snapshot says is then the state the watch shows; the Deployment itself is read
again only if the tick asks for it (to act: a write tests what it read, and its
resourceVersion), and every write through this process forgets the target's snapshot first.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

from mitigator.actions.builders import RESTARTED_AT_ANNOTATION
from mitigator.actions.change import env_of, images_of, replicas_of, revision_of
from mitigator.actions.marker import records
from mitigator.k8s import KubeClient, NotFound
from mitigator.metrics.pods import pod_health, status_health
from mitigator.models import JsonObject, parse_timestamp
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


class _ReadAgain:
    """The on-demand part of a snapshot kept from an earlier tick: the Deployment is read
    again, once, the first time the tick asks for its objects."""

    def __init__(self, kube: KubeClient, namespace: str, name: str) -> None:
        self._kube, self._namespace, self._name = kube, namespace, name
        self._detail: _Detail | None = None

    def _fresh(self) -> _Detail:
        if self._detail is None:
            deployment = self._kube.read_deployment(self._namespace, self._name)
            self._detail = _Detail(self._kube.target_read(deployment))
        return self._detail

    @property
    def read(self) -> TargetRead:
        return self._fresh().read

    def pod_health(self) -> PodHealth:
        return self._fresh().pod_health()

    def last_rollout_at(self) -> datetime | None:
        return self._fresh().last_rollout_at()


# Snapshots kept (the most recently read targets); one is a few KiB without its objects.
KEPT_SNAPSHOTS = 5_000
Key = tuple[str, str]


def _bound(kept: OrderedDict[Key, Any], size: int) -> None:
    while len(kept) > size:
        kept.popitem(last=False)


class ClusterObserver:
    def __init__(self, kube: KubeClient, *, kept: int = KEPT_SNAPSHOTS) -> None:
        self.kube = kube
        self._kept = kept
        self._seen: OrderedDict[Key, tuple[str, TargetSnapshot]] = OrderedDict()
        # Bumped by each forget: a read that started before a write (another Incident's tick
        # on the same target) must not be kept once the write forgot the target.
        self._epochs: OrderedDict[Key, int] = OrderedDict()
        self._lock = threading.Lock()

    def snapshot(
        self, namespace: str, name: str, *, watched_version: str | None = None
    ) -> TargetSnapshot:
        """The target now; `watched_version`: its resourceVersion as the watch last saw it
        (None: not known, read it)."""
        key = (namespace, name)
        if watched_version is not None:
            with self._lock:
                seen = self._seen.get(key)
            if seen is not None and seen[0] == watched_version:
                return dataclasses.replace(seen[1], detail=_ReadAgain(self.kube, namespace, name))
        with self._lock:
            epoch = self._epochs.get(key, 0)
        try:
            deployment = self.kube.read_deployment(namespace, name)
        except NotFound:
            self.forget(namespace, name)
            return TargetSnapshot(exists=False)
        snapshot = self._of(namespace, deployment)
        version = str(deployment["metadata"].get("resourceVersion") or "")
        with self._lock:
            if self._epochs.get(key, 0) == epoch:
                self._seen[key] = (version, dataclasses.replace(snapshot, detail=None))
                self._seen.move_to_end(key)
                _bound(self._seen, self._kept)
        return snapshot

    def forget(self, namespace: str, name: str) -> None:
        """Around a write to the target (before and after): the next snapshot reads it, and
        no read begun before the write is kept."""
        key = (namespace, name)
        with self._lock:
            self._seen.pop(key, None)
            self._epochs[key] = self._epochs.get(key, 0) + 1
            self._epochs.move_to_end(key)
            _bound(self._epochs, self._kept)

    def _of(self, namespace: str, deployment: JsonObject) -> TargetSnapshot:
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
