"""A first tick's reads that depend on nothing of each other overlap: the pods' LIST is started
before the two Prometheus queries and waited for where classification reads it, once."""

from __future__ import annotations

from concurrent.futures import Future
from functools import partial
from typing import Any

import pytest

from mitigator.models import ActionState, Phase
from mitigator.models.evidence import MetricSample, PodHealth, TargetRead, TargetSnapshot
from tests.unit.factories import incident, policy
from tests.unit.fake_world import Driver, FakeDetail, FakeProvider, FakeWorld, with_policy

POD = {"metadata": {"name": "web-1"}}


class Deferred:
    """A background that records what it was given and runs it only when told to."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.pending: list[tuple[Any, Future[list[dict[str, Any]]]]] = []

    def __call__(self, listing: Any) -> Future[list[dict[str, Any]]]:
        self.log.append("pods listing started")
        future: Future[list[dict[str, Any]]] = Future()
        self.pending.append((listing, future))
        return future

    def run(self) -> None:
        for listing, future in self.pending:
            try:
                future.set_result(listing())
            except Exception as exc:  # as a pool does: the error travels in the future
                future.set_exception(exc)
        self.pending.clear()


class OrderedWorld(FakeWorld):
    """The fake world, with its pods listed through a background that logs when it starts,
    and its Prometheus queries logged in the same sequence."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sequence: list[str] = []
        self.background = Deferred(self.sequence)

    def snapshot(self, namespace: str, name: str) -> TargetSnapshot:
        snapshot = super().snapshot(namespace, name)
        detail = snapshot.detail
        assert isinstance(detail, FakeDetail)
        detail.read = TargetRead(
            {"metadata": {"name": "target"}},
            list_replica_sets=list,
            list_pods=partial(self._pods_listed),
            background=self.background,
        )
        return snapshot

    def _pods_listed(self) -> list[dict[str, Any]]:
        self.listed.append("pods")
        return [POD]

    def metrics(self, prometheus_url: str | None, auth: object = None) -> FakeProvider:
        world = self

        class Logged(FakeProvider):
            def query(self, promql: str) -> MetricSample:
                world.sequence.append("query")
                world.background.run()  # the listing finishes while the queries run
                return super().query(promql)

        return Logged(self)


def test_the_first_tick_starts_the_pods_listing_before_the_prometheus_queries() -> None:
    rules = [{"name": "any", "actions": [{"rollback": {}}]}]
    world = with_policy(OrderedWorld(error_rate=0.2), policy(rules=rules))
    assert isinstance(world, OrderedWorld)
    status = Driver(world, incident()).tick()
    assert status.phase is Phase.VERIFYING
    assert [a.state for a in status.actions or ()] == [ActionState.APPLIED]
    assert world.sequence[:2] == ["pods listing started", "query"]
    assert world.listed.count("pods") == 1  # waited for, not listed again
    # The executor acts on the same read, its pods already listed.
    [read] = world.reads_given
    assert read is not None and read.pods == [POD]


def test_a_prefetched_listing_is_used_once_and_its_error_raised_where_it_is_read() -> None:
    calls: list[str] = []

    def pods() -> list[dict[str, Any]]:
        calls.append("pods")
        raise RuntimeError("forbidden")

    log: list[str] = []
    background = Deferred(log)
    read = TargetRead({}, list_replica_sets=list, list_pods=pods, background=background)
    read.prefetch_pods()
    read.prefetch_pods()  # already in flight: not started twice
    assert log == ["pods listing started"]
    background.run()
    with pytest.raises(RuntimeError, match="forbidden"):
        _ = read.pods
    assert calls == ["pods"]


def test_without_a_background_the_pods_are_listed_when_asked() -> None:
    calls: list[str] = []

    def pods() -> list[dict[str, Any]]:
        calls.append("pods")
        return [POD]

    read = TargetRead({}, list_replica_sets=list, list_pods=pods)
    read.prefetch_pods()
    assert calls == []
    assert read.pods == [POD] and read.pods == [POD]
    assert calls == ["pods"]


def test_a_snapshot_without_detail_has_nothing_to_prefetch() -> None:
    snapshot = TargetSnapshot(exists=True, pods=PodHealth(desired=1, ready=1))
    snapshot.prefetch_pod_health()
    assert snapshot.pod_health() == PodHealth(desired=1, ready=1)
