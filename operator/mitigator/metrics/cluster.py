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

A snapshot is worth keeping only while Incidents tick on its target: one not asked for in
`UNUSED_FOR_SECONDS` is dropped (at the next snapshot taken, and by `expire`, which the
operator's periodic malloc trim calls), so the 1,000 targets of a burst do not stay in the
process after their Incidents are resolved.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
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


# Snapshots kept (the most recently used targets); one is 1-2 KiB without its objects.
KEPT_SNAPSHOTS = 5_000
# A target's Incidents tick every few seconds while they wait on it (the rollout, the
# verification window); unused for this long, none is left to ask.
UNUSED_FOR_SECONDS = 60.0
Key = tuple[str, str]


def _bound(kept: OrderedDict[Key, Any], size: int) -> None:
    while len(kept) > size:
        kept.popitem(last=False)


@dataclasses.dataclass
class _Kept:
    version: str
    snapshot: TargetSnapshot
    used: float  # the clock's time of the last read or use


class ClusterObserver:
    def __init__(
        self,
        kube: KubeClient,
        *,
        kept: int = KEPT_SNAPSHOTS,
        unused_for: float = UNUSED_FOR_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self._kept = kept
        self._unused_for = unused_for
        self._clock = clock
        # Oldest use first: a use moves its entry to the end.
        self._seen: OrderedDict[Key, _Kept] = OrderedDict()
        # Bumped by each forget: a read that started before a write (another Incident's tick
        # on the same target) must not be kept once the write forgot the target.
        self._epochs: OrderedDict[Key, int] = OrderedDict()
        self._pruned_at = float("-inf")  # when `expire` last dropped write counts
        self._lock = threading.Lock()

    def snapshot(
        self, namespace: str, name: str, *, watched_version: str | None = None
    ) -> TargetSnapshot:
        """The target now; `watched_version`: its resourceVersion as the watch last saw it
        (None: not known, read it)."""
        key = (namespace, name)
        now = self._clock()
        if watched_version is not None:
            with self._lock:
                self._expire(now)
                seen = self._seen.get(key)
                if seen is not None and seen.version == watched_version:
                    seen.used = now
                    self._seen.move_to_end(key)
            if seen is not None and seen.version == watched_version:
                detail = _ReadAgain(self.kube, namespace, name)
                return dataclasses.replace(seen.snapshot, detail=detail)
        with self._lock:
            epoch = self._epochs.get(key, 0)
            started = self._clock()
        try:
            deployment = self.kube.read_deployment(namespace, name)
        except NotFound:
            self.forget(namespace, name)
            return TargetSnapshot(exists=False)
        snapshot = self._of(namespace, deployment)
        version = str(deployment["metadata"].get("resourceVersion") or "")
        with self._lock:
            if self._epochs.get(key, 0) == epoch and started > self._pruned_at:
                kept = dataclasses.replace(snapshot, detail=None)
                self._seen[key] = _Kept(version, kept, used=self._clock())
                self._seen.move_to_end(key)
                _bound(self._seen, self._kept)
        return snapshot

    def expire(self) -> int:
        """Drop the snapshots not used for `unused_for` seconds, and the write counts of
        targets without a snapshot; how many snapshots went. A read begun before this is
        not kept: a write it raced may be among the counts dropped."""
        with self._lock:
            now = self._clock()
            dropped = self._expire(now)
            if len(self._epochs) > len(self._seen):
                self._epochs = OrderedDict(
                    (key, count) for key, count in self._epochs.items() if key in self._seen
                )
                self._pruned_at = now
            return dropped

    def _expire(self, now: float) -> int:
        dropped = 0
        while self._seen:
            key, oldest = next(iter(self._seen.items()))
            if now - oldest.used < self._unused_for:
                break
            del self._seen[key]
            dropped += 1
        return dropped

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
