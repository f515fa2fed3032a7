"""Prometheus and Alertmanager from Debian, started by the harness, really work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from localkube.monitoring import Alertmanager, Prometheus
from localkube.processes import free_port, group_members, wait_until

pytestmark = pytest.mark.prometheus


def test_prometheus_scrapes_an_exporter_and_answers_a_query(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("localkube_probe_value", "a value the test sets", registry=registry)
    gauge.set(42.5)
    port = free_port()
    server, _ = start_http_server(port, addr="127.0.0.1", registry=registry)
    prometheus = Prometheus(workdir=tmp_path / "prometheus")
    prometheus.start()
    try:
        prometheus.set_targets([{"targets": [f"127.0.0.1:{port}"], "labels": {"probe": "yes"}}])
        wait_until(
            lambda: prometheus.query('localkube_probe_value{probe="yes"}'),
            timeout=30,
            what="Prometheus to scrape the exporter",
        )
        [sample] = prometheus.query('localkube_probe_value{probe="yes"}')
        assert float(sample["value"][1]) == 42.5
    finally:
        prometheus.stop()
        server.shutdown()
    assert prometheus.process is not None
    assert group_members(prometheus.process.pid) == []


def test_alertmanager_accepts_an_alert_and_posts_the_webhook(
    tmp_path: Path, webhook_receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook_receiver
    alertmanager = Alertmanager(workdir=tmp_path / "am", webhook_url=url, bearer_token="s3cret")
    alertmanager.start()
    try:
        alertmanager.post_alerts(
            [{"labels": {"alertname": "HighErrorRate", "namespace": "prod", "deployment": "web"}}]
        )
        wait_until(lambda: received, timeout=30, what="Alertmanager to call the webhook")
    finally:
        alertmanager.stop()
    payload = received[0]["payload"]
    assert received[0]["authorization"] == "Bearer s3cret"
    assert payload["version"] == "4"
    assert payload["status"] == "firing"
    assert payload["alerts"][0]["labels"]["alertname"] == "HighErrorRate"
    assert payload["groupLabels"] == {
        "alertname": "HighErrorRate",
        "namespace": "prod",
        "deployment": "web",
    }
    assert alertmanager.process is not None
    assert group_members(alertmanager.process.pid) == []
