"""Prometheus over a past window, for the post-mortem: a range of samples, or one value at a
moment. Unlike the operator's live queries, a failure here is an error the caller reports."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import requests

Series = list[tuple[datetime, float]]


class PrometheusError(RuntimeError):
    """Prometheus could not be asked, or refused the query."""


def _get(url: str, path: str, params: dict[str, str], *, timeout: float) -> dict[str, Any]:
    try:
        response = requests.get(f"{url.rstrip('/')}{path}", params=params, timeout=timeout)
    except requests.RequestException as exc:
        raise PrometheusError(f"Prometheus at {url} unreachable: {exc.__class__.__name__}") from exc
    try:
        body = response.json()
    except ValueError as exc:
        raise PrometheusError(f"Prometheus at {url} answered {response.status_code}") from exc
    if body.get("status") != "success":
        raise PrometheusError(f"Prometheus refused the query: {body.get('error')}")
    data = body.get("data")
    return data if isinstance(data, dict) else {}


def query_range(
    url: str, promql: str, *, start: datetime, end: datetime, step_seconds: float
) -> Series:
    """The query's samples over [start, end]; several series are reduced to their maximum at
    each step (a bad replica is never averaged away); NaN samples are left out."""
    data = _get(
        url,
        "/api/v1/query_range",
        {
            "query": promql,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": f"{max(step_seconds, 0.001):.3f}",
        },
        timeout=15,
    )
    peak: dict[float, float] = {}
    for series in data.get("result") or []:
        for at, value in series.get("values") or []:
            number = float(value)
            if not math.isnan(number):
                peak[float(at)] = max(peak.get(float(at), -math.inf), number)
    return [(datetime.fromtimestamp(at, UTC), value) for at, value in sorted(peak.items())]


def value_at(url: str, promql: str, *, at: datetime) -> float | None:
    """The query's value at `at` (the largest of several series); None when it has none."""
    data = _get(
        url, "/api/v1/query", {"query": promql, "time": f"{at.timestamp():.3f}"}, timeout=15
    )
    result = data.get("result")
    if isinstance(result, list):
        values = [float(s["value"][1]) for s in result if "value" in s]
    else:  # a scalar: [time, "value"]
        values = [float(result[1])] if result else []
    finite = [v for v in values if not math.isnan(v)]
    return max(finite) if finite else None
