"""The evidence an incident is judged on: the two golden signals and the pods' health."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from mitigator.domain.ports import MetricsProvider
from mitigator.models import MetricKind, MetricQueries
from mitigator.models.evidence import MetricSample, PodHealth


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """Everything classification and verification look at, gathered at one moment.

    `labels` are the incident's labels (an alert's), read for data-loss and security markers.
    """

    error_rate: MetricSample
    p95_seconds: MetricSample
    pods: PodHealth
    labels: Mapping[str, str] = field(default_factory=dict)


def all_pods_down(pods: PodHealth) -> bool:
    """The guide's "service completely down": nothing ready although replicas are wanted, or
    (at least) as many crash-looping pods as desired ones."""
    if pods.desired > 0 and pods.ready == 0:
        return True
    return pods.desired > 0 and pods.crash_looping >= pods.desired


def pod_observations(pods: PodHealth) -> dict[str, int | bool]:
    """The pod counts as recorded in status.classification.observed."""
    return {
        "desired": pods.desired,
        "ready": pods.ready,
        "crashLooping": pods.crash_looping,
        "oomKilled": pods.oom_killed,
        "restarts": pods.restarts,
        "rolloutInProgress": pods.rollout_in_progress,
    }


def sample_golden_signals(
    provider: MetricsProvider, *, queries: MetricQueries, namespace: str, name: str
) -> tuple[MetricSample, MetricSample]:
    """Error rate and p95 latency of Deployment `name`, as (error_rate, p95_seconds)."""
    return (
        _query(provider, queries.render(MetricKind.ERROR_RATE, namespace=namespace, name=name)),
        _query(provider, queries.render(MetricKind.P95_LATENCY, namespace=namespace, name=name)),
    )


def _query(provider: MetricsProvider, promql: str) -> MetricSample:
    try:
        return provider.query(promql)
    except Exception as exc:
        # The protocol says a provider answers rather than raises; one that raises anyway
        # must still not be read as healthy, nor take the handler down with it.
        return MetricSample.error(f"{type(exc).__name__}: {exc}")
