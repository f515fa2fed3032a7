"""A fake of the lifecycle's World port: a target, metric values, policies, and a log of
what the lifecycle asked to apply or revert. Mutable, so a test can change the world between
ticks the way a rollout or a recovery would."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from mitigator.domain.guardrails import slot_refusal
from mitigator.domain.lifecycle import Advance, IncidentView, advance
from mitigator.domain.selection import PolicyCandidate
from mitigator.models import ActionState, IncidentSpec, IncidentStatus, PolicySpec
from mitigator.models.evidence import (
    Contender,
    MetricSample,
    PodHealth,
    TargetRead,
    TargetSnapshot,
)
from mitigator.models.execution import (
    ActionOutcome,
    ActionRequest,
    AppliedRecord,
    GitOpsRequest,
    ReleaseRequest,
    RevertRequest,
)
from mitigator.models.gitops import GitOpsOwner
from tests.unit.factories import NOW


@dataclass
class FakeProvider:
    world: FakeWorld

    def query(self, promql: str) -> MetricSample:
        if self.world.prometheus_down:
            return MetricSample.unreachable("connection refused")
        if "ALERTS" in promql:
            return MetricSample.ok(float(self.world.firing_alerts))
        if "p95" in promql or "duration" in promql:
            return MetricSample.ok(self.world.p95_seconds)
        return MetricSample.ok(self.world.error_rate)


def _listing(world: FakeWorld, what: str) -> list[dict[str, Any]]:
    world.listed.append(what)
    return []


class FakeDetail:
    """What the fake's snapshot reads on demand, each listing logged once, as TargetRead
    lists."""

    def __init__(
        self, world: FakeWorld, *, pods: PodHealth, last_rollout_at: datetime | None
    ) -> None:
        self._pods, self._last_rollout_at = pods, last_rollout_at
        self.read = TargetRead(
            {"metadata": {"name": "target"}},
            list_replica_sets=partial(_listing, world, "replicasets"),
            list_pods=partial(_listing, world, "pods"),
        )

    def pod_health(self) -> PodHealth:
        _ = self.read.pods
        return self._pods

    def last_rollout_at(self) -> datetime | None:
        _ = self.read.replica_sets
        return self._last_rollout_at


@dataclass
class FakeWorld:
    policies_: list[PolicyCandidate] = field(default_factory=list)
    error_rate: float = 0.0
    p95_seconds: float = 0.5
    firing_alerts: int = 0
    prometheus_down: bool = False
    pods: PodHealth = field(default_factory=lambda: PodHealth(desired=3, ready=3))
    labels: dict[str, str] = field(default_factory=lambda: {"app": "luminamind"})
    applied: list[AppliedRecord] = field(default_factory=list)
    last_rollout_at: datetime | None = None
    contenders: list[Contender] = field(default_factory=list)
    exists: bool = True
    claimed_by: str | None = None
    outcomes: list[ActionOutcome] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    reverted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    released_with_revert: list[str] = field(default_factory=list)
    gitops: GitOpsOwner | None = None
    gitops_calls: list[str] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)
    listed: list[str] = field(default_factory=list)  # "pods", "replicasets", per listing
    reads_given: list[TargetRead | None] = field(default_factory=list)  # with each apply

    def snapshot(self, namespace: str, name: str) -> TargetSnapshot:
        if not self.exists:
            return TargetSnapshot(exists=False)
        # As the real observer: the status counts at once, the pods and ReplicaSets on demand
        # (each listing logged in `listed`).
        pods = self.pods
        return TargetSnapshot(
            exists=True,
            uid="target-uid",
            labels=self.labels,
            pods=PodHealth(
                desired=pods.desired, ready=pods.ready, rollout_in_progress=pods.rollout_in_progress
            ),
            images=self.images,
            gitops=self.gitops,
            detail=FakeDetail(self, pods=pods, last_rollout_at=self.last_rollout_at),
        )

    def target_labels(self, namespace: str, name: str) -> dict[str, str] | None:
        return self.labels if self.exists else None

    def metrics(self, prometheus_url: str | None, auth: object = None) -> FakeProvider:
        return FakeProvider(self)

    def policies(self, namespace: str) -> Sequence[PolicyCandidate]:
        return self.policies_

    def mitigator_of(self, namespace: str, target: str, *, me: str) -> str | None:
        for contender in self.contenders:
            if contender.uid != me and contender.holds_claim and contender.target == target:
                return contender.name
        return None

    def request_slot(self, namespace: str, me: Contender, *, limit: int) -> str | None:
        others = [c for c in self.contenders if c.uid != me.uid]
        return slot_refusal(me, others, granted=(), limit=limit)

    def apply(self, request: ActionRequest) -> ActionOutcome:
        """Decides as the executor does: the claim, then the admission, on the records as
        they are at the write."""
        if self.claimed_by is not None:
            return ActionOutcome(
                ActionState.REFUSED, f"{self.claimed_by} is mitigating", claimed_by=self.claimed_by
            )
        refusal = request.admit(tuple(self.applied))
        if refusal is not None:
            return ActionOutcome(ActionState.REFUSED, refusal)
        self.reads_given.append(request.read)
        self.calls.append((request.action_id, request.action_type.value))
        outcome = (
            self.outcomes.pop(0)
            if self.outcomes
            else ActionOutcome(
                ActionState.APPLIED, f"applied {request.action_id}", before={"replicas": 2}
            )
        )
        if outcome.state is ActionState.APPLIED:
            self.applied.append(AppliedRecord(request.key, request.action_type.value, request.now))
        return outcome

    def revert(self, request: RevertRequest) -> ActionOutcome:
        self.reverted.append((request.action_id, request.before))
        if request.release_claim:  # as the executor: the claim goes in the revert's patch
            self.released_with_revert.append(request.incident_uid)
        return ActionOutcome(
            ActionState.APPLIED,
            f"reverted {request.action_id}",
            released_claim=request.release_claim,
        )

    def release(self, request: ReleaseRequest) -> ActionOutcome:
        self.released.append(request.incident_uid)
        return ActionOutcome(ActionState.APPLIED, "released")

    def suspend_gitops(self, request: GitOpsRequest) -> ActionOutcome:
        self.gitops_calls.append("suspend")
        return ActionOutcome(
            ActionState.APPLIED, "suspended", before={"selfHeal": True}, after={"selfHeal": False}
        )

    def restore_gitops(self, request: GitOpsRequest) -> ActionOutcome:
        self.gitops_calls.append(f"restore {request.before}")
        return ActionOutcome(ActionState.APPLIED, "restored")


class Driver:
    """Ticks an incident against a FakeWorld, carrying its status from tick to tick."""

    def __init__(self, world: FakeWorld, spec: IncidentSpec, *, namespace: str = "prod") -> None:
        self.world, self.spec, self.namespace = world, spec, namespace
        self.status = IncidentStatus()
        self.now = NOW
        self.last: Advance | None = None

    def tick(
        self, *, after: timedelta = timedelta(seconds=1), **spec_changes: Any
    ) -> IncidentStatus:
        self.now += after
        if spec_changes:
            self.spec = self.spec.model_copy(update=spec_changes)
        view = IncidentView(self.namespace, "inc", "inc-uid", 1, self.spec, self.status)
        self.last = advance(view, world=self.world, now=self.now, protected_namespaces=())
        # Round-trip through the wire form, as the API server would store it.
        self.status = IncidentStatus.model_validate(self.last.status.to_api_dict())
        return self.status

    def events(self) -> list[str]:
        return [entry.event for entry in self.status.timeline or ()]


def with_policy(world: FakeWorld, spec: PolicySpec, name: str = "runbooks") -> FakeWorld:
    return replace(world, policies_=[PolicyCandidate(name, spec)])
