"""The bridge's own Prometheus metrics, in a registry of its own (served on /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class BridgeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "mitigator_bridge_requests",
            "Webhook requests answered, by HTTP status code",
            ["code"],
            registry=r,
        )
        self.requests_rejected = Counter(
            "mitigator_bridge_requests_rejected",
            "Requests refused as a whole (4xx), by reason",
            ["reason"],
            registry=r,
        )
        self.alerts_received = Counter(
            "mitigator_bridge_alerts_received", "Alerts in accepted payloads", registry=r
        )
        self.alerts_unmapped = Counter(
            "mitigator_bridge_alerts_unmapped",
            "Alerts naming no target (no namespace or Deployment label)",
            registry=r,
        )
        self.alerts_rejected = Counter(
            "mitigator_bridge_alerts_rejected",
            "Alerts naming a target the bridge refuses, by reason",
            ["reason"],
            registry=r,
        )
        self.alerts_skipped = Counter(
            "mitigator_bridge_alerts_skipped",
            "Resolved alerts of a group with no open Incident",
            registry=r,
        )
        self.incidents_created = Counter(
            "mitigator_bridge_incidents_created", "Incidents created", registry=r
        )
        self.incidents_updated = Counter(
            "mitigator_bridge_incidents_updated",
            "Incidents whose recorded alerts changed (new alerts, resolutions)",
            registry=r,
        )
        self.incidents_unchanged = Counter(
            "mitigator_bridge_incidents_unchanged",
            "Resends that changed nothing on their Incident",
            registry=r,
        )
        self.api_failures = Counter(
            "mitigator_bridge_api_failures",
            "Kubernetes API failures (answered 503, Alertmanager retries)",
            registry=r,
        )
        self.latency = Histogram(
            "mitigator_bridge_request_duration_seconds",
            "Time to answer a webhook request",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's current value (0 if absent), e.g. value("mitigator_bridge_requests_total",
        {"code": "200"}): what tests and the benchmark read."""
        return self.registry.get_sample_value(name, labels or {}) or 0.0
