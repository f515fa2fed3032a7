"""A first tick's reads that depend on nothing of each other overlap: the pods' LIST is started
before the two Prometheus queries and waited for where classification reads it, once; what the
first step may read (a rollback's ReplicaSets, the evidence of a step that replaces pods) is
started beside them too, and only when that step could be written this tick."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest

from mitigator.models import ActionState, Phase
from mitigator.models.evidence import (
    Contender,
    MetricSample,
    PodHealth,
    PodLog,
    TargetRead,
    TargetSnapshot,
)
from tests.unit.factories import incident, policy
from tests.unit.fake_world import Driver, FakeDetail, FakeProvider, FakeWorld, with_policy

POD = {"metadata": {"name": "web-1"}}


class Deferred:
    """A background that records what it was given and runs it only when told to."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.pending: list[tuple[Any, Future[list[dict[str, Any]]]]] = []

    def __call__(self, listing: Any) -> Future[list[dict[str, Any]]]:
        self.log.append(f"{getattr(listing, '__name__', 'a')} listing started")
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


class StartedEvidence:
    """The evidence's reads as the tick started them (models.evidence.EvidenceReading)."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        log.append("evidence reads started")

    def result(self) -> tuple[list[dict[str, Any]], list[PodLog]]:
        return [], []

    def drop(self) -> None:
        self.log.append("evidence dropped")


class OrderedWorld(FakeWorld):
    """The fake world, with its pods and ReplicaSets listed through a background that logs
    when each starts, its evidence's start logged, and its Prometheus queries logged in the
    same sequence."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sequence: list[str] = []
        self.background = Deferred(self.sequence)
        self.evidence_started: list[StartedEvidence] = []

    def snapshot(self, namespace: str, name: str) -> TargetSnapshot:
        snapshot = super().snapshot(namespace, name)
        detail = snapshot.detail
        assert isinstance(detail, FakeDetail)
        detail.read = TargetRead(
            {"metadata": {"name": "target"}},
            list_replica_sets=self.replica_sets,
            list_pods=self.pods_,
            background=self.background,
            start_evidence=self._start_evidence,
        )
        return snapshot

    def pods_(self) -> list[dict[str, Any]]:
        self.listed.append("pods")
        return [POD]

    def replica_sets(self) -> list[dict[str, Any]]:
        self.listed.append("replica sets")
        return []

    def _start_evidence(self, read: TargetRead) -> StartedEvidence:
        started = StartedEvidence(self.sequence)
        self.evidence_started.append(started)
        return started

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
    # The rollback's ReplicaSets and its evidence are started before the first query too.
    assert world.sequence[:4] == [
        "pods_ listing started",
        "evidence reads started",
        "replica_sets listing started",
        "query",
    ]
    assert world.listed.count("pods") == 1  # waited for, not listed again
    # The executor acts on the same read, its pods already listed, the evidence's reads
    # handed over once (not started again).
    [read] = world.reads_given
    assert read is not None and read.pods == [POD]
    assert read.evidence() is world.evidence_started[0]
    assert read.evidence() is not world.evidence_started[0]  # handed over once only


@pytest.mark.parametrize(
    ("first_step", "policy_spec", "incident_spec", "started"),
    [
        # What may follow decides what is read ahead.
        ({"restart": {}}, {}, {}, ["pods_", "evidence"]),
        ({"scale": {"replicas": 4}}, {}, {}, ["pods_"]),
        ({"setEnv": {"env": {"A": "1"}}}, {}, {}, ["pods_"]),
        # A step that cannot be written this tick reads nothing ahead.
        ({"rollback": {}}, {"guardrails": {"dryRun": True}}, {}, ["pods_"]),
        ({"rollback": {}}, {}, {"dryRun": True}, ["pods_"]),
        ({"rollback": {}}, {"guardrails": {"requireApprovalFor": ["rollback"]}}, {}, ["pods_"]),
        (
            {"rollback": {}},
            {"guardrails": {"requireApprovalFor": ["rollback"]}},
            {"approved": True},
            ["pods_", "evidence", "replica_sets"],
        ),
        # The Incident's own steps override the rules'.
        (
            {"scale": {"replicas": 4}},
            {},
            {"actions": [{"rollback": {}}]},
            ["pods_", "evidence", "replica_sets"],
        ),
    ],
)
def test_a_first_tick_reads_ahead_only_for_a_step_it_could_write(
    first_step: dict[str, Any],
    policy_spec: dict[str, Any],
    incident_spec: dict[str, Any],
    started: list[str],
) -> None:
    rules = [{"name": "any", "actions": [first_step]}]
    world = with_policy(OrderedWorld(error_rate=0.2), policy(rules=rules, **policy_spec))
    assert isinstance(world, OrderedWorld)
    Driver(world, incident(**incident_spec)).tick()
    before_queries = world.sequence[: world.sequence.index("query")]
    assert [entry.split(" ")[0] for entry in before_queries] == started


def test_a_protected_namespace_reads_nothing_ahead() -> None:
    rules = [{"name": "any", "actions": [{"rollback": {}}]}]
    spec = policy(rules=rules, guardrails={"protectedNamespaces": ["prod"]})
    world = with_policy(OrderedWorld(error_rate=0.2), spec)
    assert isinstance(world, OrderedWorld)
    status = Driver(world, incident(), namespace="prod").tick()
    assert status.phase is Phase.ESCALATED
    assert "evidence reads started" not in world.sequence
    assert "replica_sets listing started" not in world.sequence


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


def test_a_target_another_incident_is_mitigating_reads_nothing_ahead() -> None:
    rules = [{"name": "any", "actions": [{"rollback": {}}]}]
    world = with_policy(OrderedWorld(error_rate=0.2), policy(rules=rules))
    assert isinstance(world, OrderedWorld)
    world.contenders = [
        Contender(
            uid="other",
            name="first",
            detected_at=None,
            holds_claim=True,
            waiting=False,
            target="luminamind",
        )
    ]
    status = Driver(world, incident()).tick()
    assert "is mitigating Deployment luminamind" in (status.message or "")  # attached to it
    assert "evidence reads started" not in world.sequence
    assert "replica_sets listing started" not in world.sequence
