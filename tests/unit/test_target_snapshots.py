"""A target the watch shows unchanged is not read again (metrics/cluster.py): its snapshot is
kept from the last read, its objects read again only when a tick asks for them, and a write
through this process (or a read begun before one) never leaves an old snapshot behind."""

from __future__ import annotations

from collections.abc import Callable

from mitigator.k8s import NotFound
from mitigator.metrics.cluster import ClusterObserver
from mitigator.models import JsonObject
from mitigator.models.evidence import TargetRead


def _deployment(version: str, image: str = "shop:1") -> JsonObject:
    return {
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": "u1",
            "resourceVersion": version,
            "labels": {"app": "web"},
        },
        "spec": {
            "replicas": 3,
            "template": {"spec": {"containers": [{"name": "app", "image": image}]}},
        },
        "status": {"replicas": 3, "readyReplicas": 3, "updatedReplicas": 3},
    }


class Cluster:
    """Just the reads the observer makes, counted; `during_read` runs inside a read."""

    def __init__(self) -> None:
        self.current: JsonObject | None = _deployment("10")
        self.reads = 0
        self.during_read: Callable[[], None] | None = None

    def read_deployment(self, namespace: str, name: str) -> JsonObject:
        self.reads += 1
        if self.during_read is not None:
            self.during_read()
        if self.current is None:
            raise NotFound(f"Deployment {namespace}/{name} not found")
        return self.current

    def target_read(self, deployment: JsonObject) -> TargetRead:
        return TargetRead(deployment, list_replica_sets=list, list_pods=list)


def _observer() -> tuple[ClusterObserver, Cluster]:
    cluster = Cluster()
    return ClusterObserver(cluster), cluster  # type: ignore[arg-type]


def test_an_unchanged_target_is_not_read_again_until_its_objects_are_asked_for() -> None:
    observer, cluster = _observer()
    first = observer.snapshot("shop", "web", watched_version="10")
    kept = observer.snapshot("shop", "web", watched_version="10")
    assert cluster.reads == 1
    assert (kept.uid, kept.images, kept.replicas, kept.pods) == (
        first.uid,
        first.images,
        first.replicas,
        first.pods,
    )
    assert kept.read is not None and kept.read.deployment["metadata"]["resourceVersion"] == "10"
    assert kept.read is not None
    assert cluster.reads == 2  # read again for the objects, once


def test_a_changed_or_unknown_version_is_read() -> None:
    observer, cluster = _observer()
    observer.snapshot("shop", "web", watched_version="10")
    cluster.current = _deployment("11", image="shop:2")
    assert observer.snapshot("shop", "web", watched_version="11").images == {"app": "shop:2"}
    observer.snapshot("shop", "web", watched_version=None)
    assert cluster.reads == 3


def test_a_write_forgets_the_target_even_if_the_watch_lags() -> None:
    observer, cluster = _observer()
    observer.snapshot("shop", "web", watched_version="10")
    observer.forget("shop", "web")  # our write; the watch still says 10
    observer.snapshot("shop", "web", watched_version="10")
    assert cluster.reads == 2


def test_a_read_begun_before_a_write_is_not_kept() -> None:
    observer, cluster = _observer()

    def written_meanwhile() -> None:
        cluster.during_read = None
        observer.forget("shop", "web")

    cluster.during_read = written_meanwhile
    observer.snapshot("shop", "web", watched_version="10")
    observer.snapshot("shop", "web", watched_version="10")
    assert cluster.reads == 2


def test_a_deleted_target_is_not_kept() -> None:
    observer, cluster = _observer()
    observer.snapshot("shop", "web", watched_version="10")
    observer.forget("shop", "web")
    cluster.current = None
    assert observer.snapshot("shop", "web", watched_version="10").exists is False
    assert observer.snapshot("shop", "web", watched_version="10").exists is False
    assert cluster.reads == 3


def test_only_the_newest_targets_are_kept() -> None:
    cluster = Cluster()
    observer = ClusterObserver(cluster, kept=1)  # type: ignore[arg-type]
    observer.snapshot("shop", "web", watched_version="10")
    observer.snapshot("shop", "api", watched_version="10")
    observer.snapshot("shop", "web", watched_version="10")
    assert cluster.reads == 3


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _timed(unused_for: float = 60.0) -> tuple[ClusterObserver, Cluster, Clock]:
    cluster, clock = Cluster(), Clock()
    observer = ClusterObserver(cluster, unused_for=unused_for, clock=clock)  # type: ignore[arg-type]
    return observer, cluster, clock


def test_a_snapshot_nobody_asks_for_goes_when_the_next_is_taken() -> None:
    # The targets of a resolved burst: no Incident ticks on them any more.
    observer, cluster, clock = _timed()
    observer.snapshot("shop", "web", watched_version="10")
    clock.now += 61
    observer.snapshot("shop", "api", watched_version="10")
    observer.snapshot("shop", "web", watched_version="10")
    assert cluster.reads == 3  # web was read again: its snapshot had gone


def test_a_snapshot_in_use_stays() -> None:
    observer, cluster, clock = _timed()
    observer.snapshot("shop", "web", watched_version="10")
    for _ in range(5):  # an Incident ticking on it every 30 s
        clock.now += 30
        observer.snapshot("shop", "web", watched_version="10")
    assert observer.expire() == 0
    assert cluster.reads == 1


def test_expire_drops_what_nobody_asked_for_without_another_snapshot() -> None:
    # After a burst nothing ticks any more: only the periodic call can let them go.
    observer, cluster, clock = _timed()
    for name in ("web", "api", "db"):
        observer.snapshot("shop", name, watched_version="10")
    observer.forget("shop", "db")
    clock.now += 30
    observer.snapshot("shop", "web", watched_version="10")
    clock.now += 31
    assert observer.expire() == 1  # api; web was used 31 s ago, db was forgotten
    observer.snapshot("shop", "web", watched_version="10")
    observer.snapshot("shop", "api", watched_version="10")
    assert cluster.reads == 4  # api read again; web not


def test_a_read_begun_before_expire_dropped_its_write_count_is_not_kept() -> None:
    observer, cluster, clock = _timed()

    def written_then_expired() -> None:
        cluster.during_read = None
        observer.forget("shop", "web")  # another Incident's write while this read runs
        clock.now += 61
        observer.expire()  # drops the count that says so

    cluster.during_read = written_then_expired
    observer.snapshot("shop", "web", watched_version="10")
    observer.snapshot("shop", "web", watched_version="10")
    assert cluster.reads == 2
