"""End to end with the real Alertmanager and Prometheus from Debian and the shipped files:
an alert posted to Alertmanager's API travels the route in manifests/alertmanager-route.yaml
to the bridge_server, which keeps exactly one Incident for it through resends and records its
resolution; the rules in manifests/prometheus-rules.yaml pass promtool and evaluate in a real
Prometheus on the guide's metrics."""

from __future__ import annotations

import json
import subprocess
import threading
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from localkube.monitoring import Alertmanager, Prometheus
from localkube.processes import free_port, wait_until
from localkube.testing import ClusterAccess
from tests.support.bridge import (
    TOKEN,
    RunningBridge,
    bridge_settings,
    kube_for,
    list_incidents,
    stamp,
)

pytestmark = [pytest.mark.prometheus, pytest.mark.cluster]

ROOT = Path(__file__).resolve().parents[2]
ROUTE = ROOT / "manifests" / "alertmanager-route.yaml"
RULES = ROOT / "manifests" / "prometheus-rules.yaml"
_T = TypeVar("_T")
RULE_NAMES = {"HighErrorRate", "WebSearchErrors", "HighLatency", "HighMemoryUsage", "ServiceDown"}


class ShippedAlertmanager(Alertmanager):
    """The harness's Alertmanager, configured with manifests/alertmanager-route.yaml as
    shipped, except for what a test must change: the bridge's URL, the token file, and
    timers short enough for a test (group_interval and repeat_interval 1s, so an unchanged
    group is resent every second)."""

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = yaml.safe_load(ROUTE.read_text())
        token_file = self.workdir / "bridge-token"
        token_file.write_text(f"{self.bearer_token}\n")
        timers = {"group_wait": "0s", "group_interval": "1s", "repeat_interval": "1s"}
        config["route"].update(timers)
        bridge_route = config["route"]["routes"][0]
        assert bridge_route["receiver"] == "mitigator-bridge"
        bridge_route.update(timers)
        [receiver] = [r for r in config["receivers"] if r["name"] == "mitigator-bridge"]
        [webhook] = receiver["webhook_configs"]
        webhook["url"] = self.webhook_url
        webhook["http_config"]["authorization"]["credentials_file"] = str(token_file)
        return config

    def alerts(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as response:
            return list(json.loads(response.read()))

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            return str(response.read().decode())


@pytest.fixture
def bridge_server(cluster: ClusterAccess, crds: None) -> Iterator[RunningBridge]:
    with RunningBridge(kube_for(cluster), bridge_settings()) as running:
        yield running


@pytest.fixture
def shipped_alertmanager(
    tmp_path: Path, bridge_server: RunningBridge
) -> Iterator[ShippedAlertmanager]:
    instance = ShippedAlertmanager(
        workdir=tmp_path / "alertmanager", webhook_url=bridge_server.url, bearer_token=TOKEN
    )
    instance.start()
    yield instance
    instance.stop()


def test_an_alert_through_alertmanager_is_one_incident_and_its_resolution_is_recorded(
    bridge_server: RunningBridge,
    shipped_alertmanager: ShippedAlertmanager,
    api_client: client.ApiClient,
    namespace: str,
) -> None:
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    labels = {
        "alertname": "HighErrorRate",
        "namespace": namespace,
        "deployment": "luminamind",
        "severity": "critical",
    }
    annotations = {"summary": "5xx rate 12% on luminamind (above 5%)"}
    shipped_alertmanager.post_alerts(
        [{"labels": labels, "annotations": annotations, "startsAt": stamp(started)}]
    )
    [fired] = shipped_alertmanager.alerts()
    fingerprint = fired["fingerprint"]

    # Alertmanager resends the unchanged group every second: wait for several deliveries.
    delivered = "mitigator_bridge_requests_total"
    wait_until(
        lambda: bridge_server.metric(delivered, {"code": "200"}) >= 3,
        timeout=60,
        what="three webhook deliveries from Alertmanager",
    )
    [incident] = list_incidents(api_client, namespace)
    source = incident["spec"]["source"]
    assert incident["spec"]["target"]["name"] == "luminamind"
    assert incident["spec"]["title"] == annotations["summary"]
    assert source["type"] == "alertmanager"
    assert source["alertname"] == "HighErrorRate"
    assert source["fingerprint"] == fingerprint
    assert source["groupKey"].endswith(
        f'{{alertname="HighErrorRate", deployment="luminamind", namespace="{namespace}"}}'
    )
    assert source["labels"]["severity"] == "critical"
    assert [(a["fingerprint"], a["status"]) for a in source["alerts"]] == [(fingerprint, "firing")]
    assert source["alerts"][0]["startsAt"] == stamp(started)
    assert "resolvedAt" not in source
    assert bridge_server.metric("mitigator_bridge_incidents_created_total") == 1
    assert bridge_server.metric("mitigator_bridge_incidents_unchanged_total") >= 2
    assert bridge_server.metric("mitigator_bridge_requests_total", {"code": "503"}) == 0

    # The alert ends: posted again with endsAt in the past, Alertmanager resolves it and
    # sends the resolution (send_resolved).
    ended = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    shipped_alertmanager.post_alerts(
        [
            {
                "labels": labels,
                "annotations": annotations,
                "startsAt": stamp(started),
                "endsAt": stamp(ended),
            }
        ]
    )

    def resolution_recorded() -> dict[str, Any] | None:
        [current] = list_incidents(api_client, namespace)
        source = current["spec"]["source"]
        return current if source.get("resolvedAt") else None

    incident = poll(resolution_recorded, timeout=60, what="the resolution on the Incident")
    source = incident["spec"]["source"]
    assert source["resolvedAt"] == stamp(ended)
    [record] = source["alerts"]
    assert (record["fingerprint"], record["status"]) == (fingerprint, "resolved")
    assert record["endsAt"] == stamp(ended)
    assert len(list_incidents(api_client, namespace)) == 1
    assert bridge_server.metric("mitigator_bridge_incidents_created_total") == 1
    assert bridge_server.metric("mitigator_bridge_incidents_updated_total") >= 1
    # Alertmanager saw every delivery succeed.
    failed = [
        line
        for line in shipped_alertmanager.metrics_text().splitlines()
        if line.startswith('alertmanager_notifications_failed_total{integration="webhook"}')
    ]
    assert failed and all(line.endswith(" 0") for line in failed), failed


def test_an_alert_outside_the_route_does_not_reach_the_bridge(
    bridge_server: RunningBridge,
    shipped_alertmanager: ShippedAlertmanager,
    api_client: client.ApiClient,
    namespace: str,
) -> None:
    # Routed to people only: no deployment label, or not one of the guide's alerts.
    shipped_alertmanager.post_alerts(
        [
            {"labels": {"alertname": "HighErrorRate", "namespace": namespace}},
            {"labels": {"alertname": "DiskFull", "namespace": namespace, "deployment": "web"}},
            {"labels": {"alertname": "ServiceDown", "namespace": namespace, "deployment": "web"}},
        ]
    )
    wait_until(
        lambda: bridge_server.metric("mitigator_bridge_requests_total", {"code": "200"}) >= 3,
        timeout=60,
        what="deliveries to the bridge",
    )
    [incident] = list_incidents(api_client, namespace)
    assert incident["spec"]["source"]["alertname"] == "ServiceDown"
    assert bridge_server.metric("mitigator_bridge_alerts_unmapped_total") == 0


# ----------------------------------------------------------------- the rules


def poll(predicate: Callable[[], _T | None], *, timeout: float, what: str) -> _T:
    """Like wait_until, answering the predicate's last (truthy) value."""
    found: list[_T] = []

    def check() -> bool:
        value = predicate()
        if value:
            found.append(value)
        return bool(value)

    wait_until(check, timeout=timeout, what=what)
    return found[-1]


def _series(name: str, deployment: str, values: str, **labels: str) -> dict[str, str]:
    selector = ",".join(
        f'{k}="{v}"' for k, v in {"namespace": "prod", "deployment": deployment, **labels}.items()
    )
    return {"series": f"{name}{{{selector}}}", "values": values}


def _promtool_test_file(tmp_path: Path) -> Path:
    """promtool unit tests of the shipped rules, on the guide's thresholds."""
    requests, buckets = "luminamind_requests_total", "luminamind_request_duration_seconds_bucket"
    tool_errors = "luminamind_tool_errors_total"
    memory, ready = "luminamind_memory_bytes", "luminamind_ready_replicas"
    leak_summary = "4GiB per replica on prod/leak (above 3GiB of a 4Gi limit)"
    tests = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    # web: 10% of requests fail; api: 1% (below the 5% bar).
                    _series(requests, "web", "0+90x20", status="200"),
                    _series(requests, "web", "0+10x20", status="500"),
                    _series(requests, "api", "0+99x20", status="200"),
                    _series(requests, "api", "0+1x20", status="503"),
                    # web: web search fails once a second; api: never.
                    _series(tool_errors, "web", "0+60x20", tool="web_search"),
                    _series(tool_errors, "api", "0+0x20", tool="web_search"),
                    # web: p95 between 10s and 15s → warning only; slow: above 20s → critical.
                    _series(buckets, "web", "0+0x20", le="10"),
                    _series(buckets, "web", "0+100x20", le="15"),
                    _series(buckets, "web", "0+100x20", le="+Inf"),
                    _series(buckets, "slow", "0+0x20", le="20"),
                    _series(buckets, "slow", "0+100x20", le="30"),
                    _series(buckets, "slow", "0+100x20", le="+Inf"),
                    # leak: 8 GiB over 2 ready replicas; web: 600 MiB over 2.
                    _series(memory, "leak", f"{8 * 2**30}x20"),
                    _series(ready, "leak", "2x20"),
                    _series(memory, "web", f"{600 * 2**20}x20"),
                    _series(ready, "web", "2x20"),
                    # down: no ready replica.
                    _series(ready, "down", "0x20"),
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "10m",
                        "alertname": "HighErrorRate",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "critical",
                                    "namespace": "prod",
                                    "deployment": "web",
                                },
                                "exp_annotations": {
                                    "summary": "5xx rate 10% on prod/web (above 5%)",
                                    "runbook": "Runbook 2: High Error Rate (5xx errors)",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "10m",
                        "alertname": "WebSearchErrors",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "warning",
                                    "tool": "web_search",
                                    "namespace": "prod",
                                    "deployment": "web",
                                },
                                "exp_annotations": {
                                    "summary": "web search failing 1/s on prod/web",
                                    "runbook": "Runbook 2: High Error Rate, tool failing",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "10m",
                        "alertname": "HighLatency",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": sev,
                                    "namespace": "prod",
                                    "deployment": dep,
                                },
                                "exp_annotations": {
                                    "summary": f"p95 latency {value} on prod/{dep} (above {bar})",
                                    "runbook": "Runbook 3: High Latency (P95 >10s)",
                                },
                            }
                            for sev, dep, value, bar in (
                                ("warning", "web", "14.75s", "10s"),
                                ("critical", "slow", "29.5s", "20s"),
                                ("warning", "slow", "29.5s", "10s"),
                            )
                        ],
                    },
                    {
                        "eval_time": "10m",
                        "alertname": "HighMemoryUsage",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "warning",
                                    "namespace": "prod",
                                    "deployment": "leak",
                                },
                                "exp_annotations": {
                                    "summary": leak_summary,
                                    "runbook": "Runbook 4: Memory Leak / OOM Kills",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "10m",
                        "alertname": "ServiceDown",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "critical",
                                    "namespace": "prod",
                                    "deployment": "down",
                                },
                                "exp_annotations": {
                                    "summary": "prod/down is down",
                                    "runbook": "Severity assessment: service completely down → P0",
                                },
                            }
                        ],
                    },
                    # Not yet: the `for` durations hold them back.
                    {"eval_time": "1m", "alertname": "HighErrorRate", "exp_alerts": []},
                    {"eval_time": "30s", "alertname": "ServiceDown", "exp_alerts": []},
                ],
            }
        ],
    }
    path = tmp_path / "prometheus-rules.test.yaml"
    path.write_text(yaml.safe_dump(tests, allow_unicode=True))
    return path


def _run(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_promtool_checks_the_rules_and_their_thresholds(tmp_path: Path) -> None:
    assert "SUCCESS: 6 rules found" in _run("promtool", "check", "rules", str(RULES))
    _run("promtool", "test", "rules", str(_promtool_test_file(tmp_path)))


def test_amtool_checks_the_route() -> None:
    output = _run("amtool", "check-config", str(ROUTE))
    assert "SUCCESS" in output


class _LuminamindMetrics:
    """The guide's metrics for one Deployment, as the service would serve them: everything
    wrong at once (5xx 10%, half of them web search, p95 25s, 4 GiB per replica), and a second
    Deployment with no ready replica."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["namespace", "deployment"]
        self.requests = Counter(
            "luminamind_requests", "", [*labels, "status"], registry=self.registry
        )
        self.tool_errors = Counter(
            "luminamind_tool_errors", "", [*labels, "tool"], registry=self.registry
        )
        self.latency = Histogram(
            "luminamind_request_duration_seconds",
            "",
            labels,
            buckets=(1, 5, 10, 20, 30, 60),
            registry=self.registry,
        )
        memory = Gauge("luminamind_memory_bytes", "", labels, registry=self.registry)
        ready = Gauge("luminamind_ready_replicas", "", labels, registry=self.registry)
        memory.labels("prod", "web").set(8 * 2**30)
        ready.labels("prod", "web").set(2)
        ready.labels("prod", "down").set(0)
        self.stop = threading.Event()

    def serve_traffic(self) -> None:
        while not self.stop.wait(0.2):
            self.requests.labels("prod", "web", "200").inc(90)
            self.requests.labels("prod", "web", "500").inc(10)
            self.tool_errors.labels("prod", "web", "web_search").inc(5)
            for _ in range(10):
                self.latency.labels("prod", "web").observe(25)


def test_prometheus_loads_the_rules_and_evaluates_them_on_the_guides_metrics(
    tmp_path: Path,
) -> None:
    metrics = _LuminamindMetrics()
    port = free_port()
    server, _ = start_http_server(port, addr="127.0.0.1", registry=metrics.registry)
    traffic = threading.Thread(target=metrics.serve_traffic, daemon=True)
    traffic.start()
    prometheus = Prometheus(workdir=tmp_path / "prometheus", rule_files=[RULES])
    prometheus.start()
    try:
        prometheus.set_targets(
            [{"targets": [f"127.0.0.1:{port}"], "labels": {"job": "luminamind"}}]
        )

        def rules() -> list[dict[str, Any]]:
            url = f"{prometheus.url}/api/v1/rules"
            with urllib.request.urlopen(url, timeout=5) as response:
                groups = json.loads(response.read())["data"]["groups"]
            return [rule for group in groups for rule in group["rules"]]

        loaded = rules()
        assert {rule["name"] for rule in loaded} == RULE_NAMES
        assert len(loaded) == 6
        assert all(rule["type"] == "alerting" for rule in loaded)

        # Every rule evaluates without error, and each becomes pending (its `for` running)
        # for the Deployment whose metrics cross the guide's thresholds.
        def pending() -> set[tuple[str, str, str]] | None:
            states = {
                (a["labels"]["alertname"], a["labels"]["deployment"], a["labels"]["severity"])
                for a in prometheus.alerts()
                if a["state"] in ("pending", "firing")
            }
            healthy = all(rule["health"] == "ok" for rule in rules())
            expected = {
                ("HighErrorRate", "web", "critical"),
                ("WebSearchErrors", "web", "warning"),
                ("HighLatency", "web", "critical"),
                ("HighLatency", "web", "warning"),
                ("HighMemoryUsage", "web", "warning"),
                ("ServiceDown", "down", "critical"),
            }
            return states if healthy and expected <= states else None

        states = poll(pending, timeout=60, what="the shipped rules to go pending")
        assert ("ServiceDown", "web", "critical") not in states
        for alert in prometheus.alerts():
            assert alert["labels"]["namespace"] == "prod"
    finally:
        metrics.stop.set()
        prometheus.stop()
        server.shutdown()
