"""The Prometheus implementation of the domain's metrics provider.

"No data" and "Prometheus unreachable" are answers, not exceptions: the domain records them
and never counts them as healthy.
"""

from __future__ import annotations

import math

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from mitigator.models.evidence import MetricSample


class PrometheusProvider:
    """``query(promql)`` → one number, reduced from an instant vector or scalar."""

    def __init__(self, url: str, *, timeout_seconds: float = 3.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        # No client-side retries: a tick that waits on a dead Prometheus delays mitigation;
        # the next tick asks again anyway.
        self._client = PrometheusConnect(
            url=self.url, disable_ssl=True, retry=Retry(total=0), timeout=timeout_seconds
        )

    def query(self, promql: str) -> MetricSample:
        try:
            result = self._client.custom_query(
                query=promql, params={"timeout": f"{int(self.timeout_seconds * 1000)}ms"}
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            return MetricSample.unreachable(
                f"Prometheus at {self.url} unreachable: {exc.__class__.__name__}"
            )
        except PrometheusApiClientException as exc:
            return MetricSample.error(f"Prometheus rejected the query: {exc}")
        except requests.RequestException as exc:
            return MetricSample.unreachable(f"Prometheus at {self.url}: {exc}")
        return _reduce(result)


def _reduce(result: object) -> MetricSample:
    """An instant vector with one series gives its value; several series are an ambiguous
    template (the largest value is taken, so a bad replica is never averaged away); none, or
    NaN (0/0 when there is no traffic), is no data."""
    if isinstance(result, list):
        values = [float(series["value"][1]) for series in result if "value" in series]
    elif isinstance(result, dict) and "value" in result:  # a scalar result
        values = [float(result["value"][1])]
    else:
        values = []
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return MetricSample.no_data(
            "the query returned no samples" if not values else "NaN (no traffic)"
        )
    return MetricSample.ok(max(finite))
