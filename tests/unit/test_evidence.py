"""Evidence gathering over the metrics port, and how samples are read."""

from __future__ import annotations

import math

from mitigator.domain.evidence import all_pods_down, sample_golden_signals
from mitigator.domain.ports import MetricsProvider, describe_sample, usable_value
from mitigator.models import MetricQueries
from mitigator.models.evidence import MetricSample, PodHealth


class RecordingProvider:
    def __init__(self, answers: list[MetricSample | Exception]) -> None:
        self.answers = answers
        self.queries: list[str] = []

    def query(self, promql: str) -> MetricSample:
        self.queries.append(promql)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_sample_golden_signals_renders_and_queries_both() -> None:
    provider = RecordingProvider([MetricSample.ok(0.02), MetricSample.ok(3.5)])
    port: MetricsProvider = provider
    error_rate, p95 = sample_golden_signals(
        port, queries=MetricQueries(), namespace="prod", name="luminamind"
    )
    assert (error_rate.value, p95.value) == (0.02, 3.5)
    assert len(provider.queries) == 2
    assert all('namespace="prod",deployment="luminamind"' in query for query in provider.queries)
    assert "luminamind_requests_total" in provider.queries[0]
    assert "histogram_quantile(0.95" in provider.queries[1]


def test_a_provider_that_raises_gives_an_error_sample() -> None:
    provider = RecordingProvider([RuntimeError("boom"), MetricSample.no_data("empty")])
    error_rate, p95 = sample_golden_signals(
        provider, queries=MetricQueries(), namespace="n", name="d"
    )
    assert (error_rate.status, error_rate.detail) == ("error", "RuntimeError: boom")
    assert p95.status == "no_data"


def test_usable_value_and_describe_sample() -> None:
    assert usable_value(MetricSample.ok(0.5)) == 0.5
    assert usable_value(MetricSample.ok(0.0)) == 0.0
    assert usable_value(MetricSample("ok", math.nan)) is None
    assert usable_value(MetricSample.unreachable("down")) is None
    assert describe_sample(MetricSample.ok(1)) == "ok"
    assert describe_sample(MetricSample.unreachable("connection refused")) == (
        "unreachable (connection refused)"
    )
    assert describe_sample(MetricSample("ok", math.nan)) == "no_data"
    assert describe_sample(MetricSample.error("")) == "error"


def test_all_pods_down() -> None:
    assert all_pods_down(PodHealth(desired=3, ready=0))
    assert all_pods_down(PodHealth(desired=2, ready=1, crash_looping=2))
    assert not all_pods_down(PodHealth(desired=3, ready=1, crash_looping=1))
    assert not all_pods_down(PodHealth(desired=0, ready=0))
