"""The operator's own metrics, in a registry of its own, served on `/metrics` by `serve`.

Named by Prometheus conventions: `mitigator_` prefix, the unit in the name, `_total` on
counters (prometheus-client adds it). Label values are bounded sets (phases, severities,
action types, results, reasons): never an incident's or a target's name.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from mitigator.observability.heap import HeapCollector

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
REGISTRY.register(HeapCollector())

# From seconds (a tight loop, as in tests) to the guide's hours.
_INCIDENT_BUCKETS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400)
_TICK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class _Incidents(Collector):
    """`mitigator_incidents{phase,severity}`: the Incidents the operator sees now, counted
    from what its watch last delivered for each (kept by uid; deleted ones leave); and
    `mitigator_incident_phase_age_seconds{phase}`: how long the longest-waiting one has been
    in its phase, as this process saw it change (a stuck incident's alert)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_uid: dict[str, tuple[str, str]] = {}
        self._since: dict[str, float] = {}

    def observe(self, uid: str, *, phase: str | None, severity: str | None) -> None:
        key = (phase or "Pending", severity or "unknown")
        with self._lock:
            previous = self._by_uid.get(uid)
            if previous is None or previous[0] != key[0]:
                self._since[uid] = time.time()
            self._by_uid[uid] = key

    def forget(self, uid: str) -> None:
        with self._lock:
            self._by_uid.pop(uid, None)
            self._since.pop(uid, None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "mitigator_incidents",
            "Incidents the operator watches, by phase and severity",
            labels=["phase", "severity"],
        )
        ages = GaugeMetricFamily(
            "mitigator_incident_phase_age_seconds",
            "Time the longest-waiting Incident of each phase has been in it",
            labels=["phase"],
        )
        counts: dict[tuple[str, str], int] = {}
        oldest: dict[str, float] = {}
        now = time.time()
        with self._lock:
            for uid, key in self._by_uid.items():
                counts[key] = counts.get(key, 0) + 1
                age = now - self._since.get(uid, now)
                oldest[key[0]] = max(oldest.get(key[0], 0.0), age)
        for (phase, severity), count in sorted(counts.items()):
            family.add_metric([phase, severity], count)
        for phase, age in sorted(oldest.items()):
            ages.add_metric([phase], age)
        yield family
        yield ages


INCIDENTS = _Incidents()
REGISTRY.register(INCIDENTS)

TRANSITIONS = Counter(
    "mitigator_incident_transitions",
    "Phase changes of Incidents, by the phase entered",
    ["phase"],
    registry=REGISTRY,
)
ACTIONS = Counter(
    "mitigator_actions",
    "Mitigation steps that reached a final state, by action type and result",
    ["type", "result"],
    registry=REGISTRY,
)
TIME_TO_FIRST_ACTION = Histogram(
    "mitigator_time_to_first_action_seconds",
    "From detection to the first mitigation applied",
    buckets=_INCIDENT_BUCKETS,
    registry=REGISTRY,
)
TIME_TO_RESOLUTION = Histogram(
    "mitigator_time_to_resolution_seconds",
    "From detection to Resolved",
    buckets=_INCIDENT_BUCKETS,
    registry=REGISTRY,
)
VERIFICATIONS = Counter(
    "mitigator_verifications",
    "Verification outcomes: passed (held for the window) or failed (timed out)",
    ["result"],
    registry=REGISTRY,
)
PROMETHEUS_QUERY_ERRORS = Counter(
    "mitigator_prometheus_query_errors",
    "Prometheus queries without an answer, by reason (unreachable, tls, auth, rejected)",
    ["reason"],
    registry=REGISTRY,
)
ESCALATION_DELIVERIES = Counter(
    "mitigator_escalation_deliveries",
    "Escalation notifications, by kind (trigger, resolve), format and result "
    "(delivered, failed, refused)",
    ["kind", "format", "result"],
    registry=REGISTRY,
)
LEADER = Gauge(
    "mitigator_leader",
    "1 while this replica holds the leader Lease and acts; 0 otherwise",
    registry=REGISTRY,
)
TICK_DURATION = Histogram(
    "mitigator_tick_duration_seconds",
    "Time one incident tick takes (reads, decision, writes)",
    buckets=_TICK_BUCKETS,
    registry=REGISTRY,
)
# Queued work the handler threads had no room for yet: a new Incident's first tick, or any
# other (handlers/first_ticks_first.py).
HANDLER_QUEUE_WAIT = Histogram(
    "mitigator_handler_queue_wait_seconds",
    "Time a handler waited for a free handler thread, by kind of work",
    ["work"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)


def observe_handler_wait(*, first_tick: bool, seconds: float) -> None:
    HANDLER_QUEUE_WAIT.labels(work="first_tick" if first_tick else "other").observe(seconds)


def set_leader(leading: bool) -> None:
    """For leader election: whether this replica acts now."""
    LEADER.set(1 if leading else 0)


def serve(port: int, *, host: str = "0.0.0.0") -> Any:
    """Serve `/metrics` on `host:port` in a daemon thread; returns the server."""
    server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    return server
