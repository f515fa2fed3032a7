"""The bridge's own Prometheus metrics, in a registry of its own (served on /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class BridgeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = self._counter(
            "mitigator_bridge_requests", "Webhook requests answered, by HTTP status code", "code"
        )
        self.requests_rejected = self._counter(
            "mitigator_bridge_requests_rejected",
            "Requests refused as a whole (4xx), by reason",
            "reason",
        )
        self.alerts_received = self._counter(
            "mitigator_bridge_alerts_received", "Alerts in accepted payloads"
        )
        self.alerts_unmapped = self._counter(
            "mitigator_bridge_alerts_unmapped",
            "Alerts naming no target (no namespace or Deployment label)",
        )
        self.alerts_rejected = self._counter(
            "mitigator_bridge_alerts_rejected",
            "Alerts naming a target the bridge refuses, by reason",
            "reason",
        )
        self.alerts_skipped = self._counter(
            "mitigator_bridge_alerts_skipped", "Resolved alerts of a group with no open Incident"
        )
        self.incidents_created = self._counter(
            "mitigator_bridge_incidents_created", "Incidents created"
        )
        self.incidents_updated = self._counter(
            "mitigator_bridge_incidents_updated",
            "Incidents whose recorded alerts changed (new alerts, resolutions)",
        )
        self.incidents_attached = self._counter(
            "mitigator_bridge_incidents_attached",
            "Alerts written to their target's open Incident of another origin (a person's, "
            "another group's) instead of a new one",
        )
        self.alerts_truncated = self._counter(
            "mitigator_bridge_alerts_truncated",
            "Alerts Alertmanager reported leaving out of its notifications (truncatedAlerts), "
            "summed over notifications",
        )
        self.alerts_dropped = self._counter(
            "mitigator_bridge_alerts_dropped",
            "Alerts of notifications not recorded on their Incident (over the alerts-per-"
            "Incident cap), summed over notifications",
        )
        self.labels_dropped = self._counter(
            "mitigator_bridge_labels_dropped",
            "Alert labels not stored (over the count or size caps), summed over notifications",
        )
        self.pods_followed = self._counter(
            "mitigator_bridge_pods_followed",
            "Pods named by alerts followed to their Deployment, by result (deployment, or why "
            "none)",
            "result",
        )
        self.incidents_unchanged = self._counter(
            "mitigator_bridge_incidents_unchanged", "Resends that changed nothing on their Incident"
        )
        self.api_failures = self._counter(
            "mitigator_bridge_api_failures",
            "Kubernetes API failures (answered 503, Alertmanager retries)",
        )
        self.latency = Histogram(
            "mitigator_bridge_request_duration_seconds",
            "Time to answer a webhook request",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

    def _counter(self, name: str, documentation: str, *labels: str) -> Counter:
        return Counter(name, documentation, labels, registry=self.registry)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's current value (0 if absent), e.g. value("mitigator_bridge_requests_total",
        {"code": "200"}): what tests and the benchmark read."""
        return self.registry.get_sample_value(name, labels or {}) or 0.0
