"""The real `World` the lifecycle runs against: the API server, Prometheus, and kopf's
indexes for what would otherwise be listed on every tick."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mitigator.actions.executor import ActionExecutor
from mitigator.actions.gitops import GitOpsSwitch
from mitigator.domain.guardrails import slot_refusal
from mitigator.domain.ports import MetricsProvider
from mitigator.domain.selection import PolicyCandidate
from mitigator.handlers.indexes import contenders_in, deployment_labels, policies_in
from mitigator.k8s import KubeClient
from mitigator.metrics.cluster import ClusterObserver
from mitigator.metrics.prometheus import PrometheusProvider
from mitigator.models.evidence import Contender, MetricSample, TargetSnapshot
from mitigator.models.execution import (
    ActionOutcome,
    ActionRequest,
    GitOpsRequest,
    ReleaseRequest,
    RevertRequest,
)


class Cluster:
    """The long-lived parts: API client, executor, observer, one provider per Prometheus."""

    def __init__(self, kube: KubeClient, *, default_prometheus_url: str | None) -> None:
        self.kube = kube
        self.executor = ActionExecutor(kube)
        self.gitops = GitOpsSwitch(kube)
        self.observer = ClusterObserver(kube)
        self.default_prometheus_url = default_prometheus_url
        self._providers: dict[str, PrometheusProvider] = {}
        # Slots granted by this process whose incidents the index does not show holding yet:
        # ticks run in parallel threads, and a grant must count before its status is written.
        self._granted: dict[str, set[str]] = {}
        self._slots = threading.Lock()
        # The coverage this process last wrote per (namespace, policy): the index holds the
        # policy as last seen, which lags our own writes; comparing with it alone made every
        # Deployment event of a burst (or of a start) re-write the same coverage.
        self.coverage_written: dict[tuple[str, str], frozenset[str]] = {}

    def request_slot(
        self, namespace: str, me: Contender, others: Sequence[Contender], *, limit: int
    ) -> str | None:
        """`slot_refusal` decided and the grant recorded atomically."""
        with self._slots:
            live = {o.uid: o for o in others}
            granted = {
                uid
                for uid in self._granted.get(namespace, set())
                if uid == me.uid or (uid in live and not live[uid].holds_claim)
            }
            refusal = slot_refusal(me, others, granted=granted, limit=limit)
            if refusal is None:
                granted.add(me.uid)
            self._granted[namespace] = granted
            return refusal

    def metrics(self, prometheus_url: str | None) -> MetricsProvider:
        url = prometheus_url or self.default_prometheus_url
        if not url:
            return _NoPrometheus()
        provider = self._providers.get(url)
        if provider is None:
            provider = self._providers[url] = PrometheusProvider(url)
        return provider

    def world(self, handler_kwargs: Mapping[str, Any]) -> ClusterWorld:
        """The world of one handler call, with the indexes kopf passed to it."""
        return ClusterWorld(self, handler_kwargs)


@dataclass(frozen=True)
class ClusterWorld:
    """The `World` of one tick: the cluster, and kopf's indexes as the handler received them."""

    cluster: Cluster
    handler_kwargs: Mapping[str, Any]

    def snapshot(self, namespace: str, name: str) -> TargetSnapshot:
        return self.cluster.observer.snapshot(namespace, name)

    def target_labels(self, namespace: str, name: str) -> Mapping[str, str] | None:
        return deployment_labels(self.handler_kwargs, namespace, name)

    def metrics(self, prometheus_url: str | None) -> MetricsProvider:
        return self.cluster.metrics(prometheus_url)

    def policies(self, namespace: str) -> Sequence[PolicyCandidate]:
        return [policy.candidate for policy in policies_in(self.handler_kwargs, namespace)]

    def request_slot(self, namespace: str, me: Contender, *, limit: int) -> str | None:
        others = [c for c in contenders_in(self.handler_kwargs, namespace) if c.uid != me.uid]
        return self.cluster.request_slot(namespace, me, others, limit=limit)

    def apply(self, request: ActionRequest) -> ActionOutcome:
        return self.cluster.executor.apply(request)

    def revert(self, request: RevertRequest) -> ActionOutcome:
        return self.cluster.executor.revert(request)

    def release(self, request: ReleaseRequest) -> ActionOutcome:
        return self.cluster.executor.release(request)

    def suspend_gitops(self, request: GitOpsRequest) -> ActionOutcome:
        return self.cluster.gitops.suspend(request)

    def restore_gitops(self, request: GitOpsRequest) -> ActionOutcome:
        return self.cluster.gitops.restore(request)


class _NoPrometheus:
    """No Prometheus configured: every query is an answer of "unreachable", never a value."""

    def query(self, promql: str) -> MetricSample:
        return MetricSample.unreachable(
            "no Prometheus configured (policy metrics.prometheusURL or MITIGATOR_PROMETHEUS_URL)"
        )
