"""The real ``World`` the lifecycle runs against: the API server and Prometheus."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from mitigator.actions.executor import ActionExecutor
from mitigator.domain.ports import MetricsProvider
from mitigator.domain.selection import PolicyCandidate
from mitigator.k8s import KubeClient
from mitigator.metrics.cluster import ClusterObserver
from mitigator.metrics.prometheus import PrometheusProvider
from mitigator.models import ActionStep, ActionType, Phase, PolicySpec, describe_validation_error
from mitigator.models.evidence import MetricSample, TargetSnapshot
from mitigator.models.outcomes import ActionOutcome

ACTIVE_PHASES = frozenset({Phase.MITIGATING.value, Phase.VERIFYING.value})


class ClusterWorld:
    def __init__(self, kube: KubeClient, *, default_prometheus_url: str | None) -> None:
        self.kube = kube
        self.executor = ActionExecutor(kube)
        self.observer = ClusterObserver(kube)
        self.default_prometheus_url = default_prometheus_url
        self._providers: dict[str, PrometheusProvider] = {}

    def snapshot(self, namespace: str, name: str) -> TargetSnapshot:
        return self.observer.snapshot(namespace, name)

    def metrics(self, prometheus_url: str | None) -> MetricsProvider:
        url = prometheus_url or self.default_prometheus_url
        if not url:
            return _NoPrometheus()
        provider = self._providers.get(url)
        if provider is None:
            provider = self._providers[url] = PrometheusProvider(url)
        return provider

    def policies(self, namespace: str) -> Sequence[PolicyCandidate]:
        return [parse_policy(item) for item in self.kube.list_policies(namespace)]

    def active_mitigations(self, namespace: str, *, excluding: str) -> int:
        return sum(
            1
            for item in self.kube.list_incidents(namespace)
            if item["metadata"]["uid"] != excluding
            and (item.get("status") or {}).get("phase") in ACTIVE_PHASES
        )

    def apply(
        self,
        *,
        namespace: str,
        target: str,
        step: ActionStep,
        incident_uid: str,
        action_id: str,
        max_replicas: int,
        now: datetime,
    ) -> ActionOutcome:
        return self.executor.apply(
            namespace=namespace,
            target=target,
            action_type=step.action_type.value,
            params=step.params,
            incident_uid=incident_uid,
            action_id=action_id,
            max_replicas=max_replicas,
            now=now,
        )

    def revert(
        self,
        *,
        namespace: str,
        target: str,
        action_type: ActionType,
        before: dict[str, Any],
        incident_uid: str,
        action_id: str,
        now: datetime,
    ) -> ActionOutcome:
        return self.executor.revert(
            namespace=namespace,
            target=target,
            action_type=action_type.value,
            before=before,
            incident_uid=incident_uid,
            action_id=action_id,
            now=now,
        )


class _NoPrometheus:
    """No Prometheus configured: every query is an answer of "unreachable", never a value."""

    def query(self, promql: str) -> MetricSample:
        return MetricSample.unreachable(
            "no Prometheus configured (policy metrics.prometheusURL or MITIGATOR_PROMETHEUS_URL)"
        )


def parse_policy(item: dict[str, Any]) -> PolicyCandidate:
    name = item["metadata"]["name"]
    try:
        return PolicyCandidate(name, PolicySpec.model_validate(item.get("spec") or {}))
    except ValidationError as exc:
        return PolicyCandidate(name, None, describe_validation_error(exc))
