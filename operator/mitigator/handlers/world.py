"""The real `World` the lifecycle runs against: the API server, Prometheus, kopf's indexes
and the operator's Deployment cache for what would otherwise be listed on every tick."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mitigator.actions.executor import ActionExecutor
from mitigator.actions.gitops import GitOpsSwitch
from mitigator.domain.guardrails import slot_refusal
from mitigator.domain.ports import MetricsProvider
from mitigator.domain.selection import PolicyCandidate
from mitigator.handlers import allocator
from mitigator.handlers.deployments import DeploymentCache
from mitigator.handlers.indexes import contenders_in, policies_in
from mitigator.handlers.leadership import AlwaysActing, Leadership, ensure_acting
from mitigator.k8s import ApiError, KubeClient, NotFound
from mitigator.metrics.cluster import ClusterObserver
from mitigator.metrics.prometheus import (
    PrometheusConnection,
    PrometheusProvider,
    connection_from_secret,
)
from mitigator.models import PrometheusAuth
from mitigator.models.evidence import Contender, MetricSample, TargetSnapshot
from mitigator.models.execution import (
    ActionOutcome,
    ActionRequest,
    GitOpsRequest,
    ReleaseRequest,
    RevertRequest,
)
from mitigator.observability.metrics import PROMETHEUS_QUERY_ERRORS

# How long a policy's Prometheus credentials are used before its Secret is read again.
CREDENTIALS_TTL = 30.0


class Cluster:
    """The long-lived parts: API client, executor, observer, one provider per Prometheus."""

    def __init__(
        self,
        kube: KubeClient,
        *,
        default_prometheus_url: str | None,
        leadership: Leadership | None = None,
        prometheus_connection: PrometheusConnection | None = None,
    ) -> None:
        self.kube = kube
        self.leadership: Leadership = leadership or AlwaysActing()
        self.executor = ActionExecutor(kube)
        self.gitops = GitOpsSwitch(kube)
        self.observer = ClusterObserver(kube)
        # Snapshots of targets no Incident ticks on any more go before the periodic trim.
        allocator.before_each_trim(self.observer.expire)
        self.default_prometheus_url = default_prometheus_url
        self.prometheus_connection = prometheus_connection
        self._credentialed: dict[tuple[str, str, str], tuple[float, PrometheusProvider]] = {}
        self._credential_files = Path(tempfile.mkdtemp(prefix="mitigator-prometheus-"))
        self._providers: dict[str, PrometheusProvider] = {}
        # Slots granted by this process whose incidents the index does not show holding yet:
        # ticks run in parallel threads, and a grant must count before its status is written.
        self._granted: dict[str, set[str]] = {}
        self._slots = threading.Lock()
        # The coverage this process last wrote per (namespace, policy): the index holds the
        # policy as last seen, which lags our own writes; comparing with it alone made every
        # Deployment event of a burst (or of a start) re-write the same coverage.
        self.coverage_written: dict[tuple[str, str], frozenset[str]] = {}
        # The watched namespaces' Deployments (deployment_feed.py puts the one its watch fills
        # here at the start); this one is never complete, so no tick decides on it.
        self.deployments = DeploymentCache([None])

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

    def metrics(
        self,
        prometheus_url: str | None,
        *,
        auth: PrometheusAuth | None = None,
        namespace: str | None = None,
    ) -> MetricsProvider:
        url = prometheus_url or self.default_prometheus_url
        if not url:
            return _NoPrometheus()
        if auth is not None and namespace is not None:
            return self._with_credentials(url, auth=auth, namespace=namespace)
        provider = self._providers.get(url)
        if provider is None:
            provider = self._providers[url] = PrometheusProvider(
                url, connection=self.prometheus_connection
            )
        return provider

    def _with_credentials(
        self, url: str, *, auth: PrometheusAuth, namespace: str
    ) -> MetricsProvider:
        """A provider with the credentials of the policy's Secret (in its namespace), read at
        most every CREDENTIALS_TTL seconds; a Secret that cannot be read is an unreachable
        Prometheus (Unknown), never a query without the credentials."""
        key = (url, namespace, auth.secret_ref.name)
        now = time.monotonic()
        cached = self._credentialed.get(key)
        if cached is not None and now - cached[0] < CREDENTIALS_TTL:
            return cached[1]
        where = f"Prometheus credentials Secret {namespace}/{auth.secret_ref.name}"
        try:
            data = self.kube.read_secret_data(namespace, auth.secret_ref.name)
        except NotFound:
            return _Unreachable(f"{where} not found")
        except ApiError as exc:
            forbidden = " (forbidden: grant the operator `get` on it)" if exc.status == 403 else ""
            return _Unreachable(f"{where} unreadable: HTTP {exc.status}{forbidden}")
        provider = PrometheusProvider(
            url, connection=connection_from_secret(data, files=self._credential_files)
        )
        self._credentialed[key] = (now, provider)
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
        watched = self.cluster.deployments.get(namespace, name)
        return self.cluster.observer.snapshot(
            namespace,
            name,
            watched_version=watched.resource_version if watched is not None else None,
        )

    def target_labels(self, namespace: str, name: str) -> Mapping[str, str] | None:
        watched = self.cluster.deployments.get(namespace, name)
        return watched.labels if watched is not None else None

    def metrics(
        self, prometheus_url: str | None, auth: PrometheusAuth | None = None
    ) -> MetricsProvider:
        # The handler's namespace is the Incident's, and so the policy's: its Secrets only.
        namespace = self.handler_kwargs.get("namespace")
        return self.cluster.metrics(
            prometheus_url, auth=auth, namespace=str(namespace) if namespace else None
        )

    def policies(self, namespace: str) -> Sequence[PolicyCandidate]:
        return [policy.candidate for policy in policies_in(self.handler_kwargs, namespace)]

    def mitigator_of(self, namespace: str, target: str, *, me: str) -> str | None:
        for contender in contenders_in(self.handler_kwargs, namespace):
            if contender.uid != me and contender.holds_claim and contender.target == target:
                return contender.name
        return None

    def request_slot(self, namespace: str, me: Contender, *, limit: int) -> str | None:
        others = [c for c in contenders_in(self.handler_kwargs, namespace) if c.uid != me.uid]
        return self.cluster.request_slot(namespace, me, others, limit=limit)

    # Every write to a target asks for leadership right before it is made: a replica that
    # lost the Lease during a tick (frozen, partitioned) stops here, not after the write.
    def apply(self, request: ActionRequest) -> ActionOutcome:
        ensure_acting(self.cluster.leadership, f"apply {_on(request)} action {request.action_id}")
        with self._forgotten(request):
            return self.cluster.executor.apply(request)

    def revert(self, request: RevertRequest) -> ActionOutcome:
        ensure_acting(self.cluster.leadership, f"revert {_on(request)} action {request.action_id}")
        with self._forgotten(request):
            return self.cluster.executor.revert(request)

    def release(self, request: ReleaseRequest) -> ActionOutcome:
        ensure_acting(self.cluster.leadership, f"release {_on(request)}")
        with self._forgotten(request):
            return self.cluster.executor.release(request)

    @contextmanager
    def _forgotten(self, request: ActionRequest | RevertRequest | ReleaseRequest) -> Iterator[None]:
        # Our own write must not be judged from a snapshot taken before it, whatever the
        # watch has caught up with by the next tick.
        self.cluster.observer.forget(request.namespace, request.target)
        try:
            yield
        finally:
            self.cluster.observer.forget(request.namespace, request.target)

    def suspend_gitops(self, request: GitOpsRequest) -> ActionOutcome:
        ensure_acting(self.cluster.leadership, f"suspend {request.owner}")
        return self.cluster.gitops.suspend(request)

    def restore_gitops(self, request: GitOpsRequest) -> ActionOutcome:
        ensure_acting(self.cluster.leadership, f"restore {request.owner}")
        return self.cluster.gitops.restore(request)


def _on(request: ActionRequest | RevertRequest | ReleaseRequest) -> str:
    return f"Deployment {request.namespace}/{request.target}"


@dataclass(frozen=True)
class _Unreachable:
    """A Prometheus the operator will not query (its credentials are missing)."""

    detail: str

    def query(self, promql: str) -> MetricSample:
        PROMETHEUS_QUERY_ERRORS.labels("config").inc()
        return MetricSample.unreachable(self.detail)


class _NoPrometheus:
    """No Prometheus configured: every query is an answer of "unreachable", never a value."""

    def query(self, promql: str) -> MetricSample:
        return MetricSample.unreachable(
            "no Prometheus configured (policy metrics.prometheusURL or MITIGATOR_PROMETHEUS_URL)"
        )
