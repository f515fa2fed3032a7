"""The real `World` the lifecycle runs against: the API server, Prometheus, and kopf's
indexes for what would otherwise be listed on every tick."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mitigator.actions.executor import ActionExecutor
from mitigator.domain.ports import MetricsProvider
from mitigator.domain.selection import PolicyCandidate
from mitigator.handlers.indexes import mitigating_in, policies_in
from mitigator.k8s import KubeClient
from mitigator.metrics.cluster import ClusterObserver
from mitigator.metrics.prometheus import PrometheusProvider
from mitigator.models.evidence import MetricSample, TargetSnapshot
from mitigator.models.execution import ActionOutcome, ActionRequest, RevertRequest


class Cluster:
    """The long-lived parts: API client, executor, observer, one provider per Prometheus."""

    def __init__(self, kube: KubeClient, *, default_prometheus_url: str | None) -> None:
        self.kube = kube
        self.executor = ActionExecutor(kube)
        self.observer = ClusterObserver(kube)
        self.default_prometheus_url = default_prometheus_url
        self._providers: dict[str, PrometheusProvider] = {}

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

    def metrics(self, prometheus_url: str | None) -> MetricsProvider:
        return self.cluster.metrics(prometheus_url)

    def policies(self, namespace: str) -> Sequence[PolicyCandidate]:
        return [policy.candidate for policy in policies_in(self.handler_kwargs, namespace)]

    def active_mitigations(self, namespace: str, *, excluding: str) -> int:
        return sum(1 for uid in mitigating_in(self.handler_kwargs, namespace) if uid != excluding)

    def apply(self, request: ActionRequest) -> ActionOutcome:
        return self.cluster.executor.apply(request)

    def revert(self, request: RevertRequest) -> ActionOutcome:
        return self.cluster.executor.revert(request)


class _NoPrometheus:
    """No Prometheus configured: every query is an answer of "unreachable", never a value."""

    def query(self, promql: str) -> MetricSample:
        return MetricSample.unreachable(
            "no Prometheus configured (policy metrics.prometheusURL or MITIGATOR_PROMETHEUS_URL)"
        )
