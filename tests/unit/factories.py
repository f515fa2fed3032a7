"""Small builders for unit tests: evidence, policies and incidents with sensible defaults."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mitigator.domain.evidence import Evidence
from mitigator.models import IncidentSpec, PolicySpec
from mitigator.models.evidence import MetricSample, PodHealth

NOW = datetime(2025, 11, 26, 14, 23, tzinfo=UTC)


def ok(value: float) -> MetricSample:
    return MetricSample.ok(value)


def evidence(
    *,
    error_rate: float | MetricSample = 0.001,
    p95: float | MetricSample = 1.0,
    desired: int = 3,
    ready: int | None = None,
    crash_looping: int = 0,
    oom_killed: int = 0,
    rollout_in_progress: bool = False,
    labels: dict[str, str] | None = None,
) -> Evidence:
    """Healthy by default: 0.1% errors, 1s p95, 3/3 pods ready."""
    return Evidence(
        error_rate=error_rate if isinstance(error_rate, MetricSample) else ok(error_rate),
        p95_seconds=p95 if isinstance(p95, MetricSample) else ok(p95),
        pods=PodHealth(
            desired=desired,
            ready=desired if ready is None else ready,
            crash_looping=crash_looping,
            oom_killed=oom_killed,
            rollout_in_progress=rollout_in_progress,
        ),
        labels=labels or {},
    )


def policy(**spec: Any) -> PolicySpec:
    base: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "luminamind"}},
        "rules": [{"name": "restart", "actions": [{"restart": {}}]}],
    }
    base.update(spec)
    return PolicySpec.model_validate(base)


def incident(**spec: Any) -> IncidentSpec:
    base: dict[str, Any] = {"target": {"name": "luminamind"}}
    base.update(spec)
    return IncidentSpec.model_validate(base)
