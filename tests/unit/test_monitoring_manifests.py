"""config/monitoring agrees with the rest: the PrometheusRule carries exactly the guide's rules
of manifests/prometheus-rules.yaml, the PodMonitors scrape the ports config/base's Deployments
name, the kustomization lists every file, and the dashboard is valid JSON whose panels all
query."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "config" / "monitoring"


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_the_guide_rules_are_the_shipped_rule_file() -> None:
    rule = _load(MONITORING / "prometheusrule-guide.yaml")
    assert rule["spec"]["groups"] == _load(ROOT / "manifests" / "prometheus-rules.yaml")["groups"]


def test_the_kustomization_lists_every_file() -> None:
    kustomization = _load(MONITORING / "kustomization.yaml")
    listed = set(kustomization["resources"]) | {
        name.split("=", 1)[1]
        for generator in kustomization["configMapGenerator"]
        for name in generator["files"]
    }
    present = {p.name for p in MONITORING.iterdir() if p.name != "kustomization.yaml"}
    assert listed == present
    [generator] = kustomization["configMapGenerator"]
    assert generator["options"]["labels"]["grafana_dashboard"] == "1"


def _container_ports(manifest: Path, label: str) -> set[str]:
    for doc in yaml.safe_load_all(manifest.read_text()):
        if doc and doc["kind"] == "Deployment":
            template = doc["spec"]["template"]
            if template["metadata"]["labels"].get("app.kubernetes.io/name") == label:
                return {
                    port["name"]
                    for container in template["spec"]["containers"]
                    for port in container.get("ports") or []
                }
    raise AssertionError(f"no Deployment labelled {label} in {manifest}")


def test_pod_monitors_scrape_ports_the_deployments_name() -> None:
    for monitor, manifest in (
        ("podmonitor-operator.yaml", "operator-deployment.yaml"),
        ("podmonitor-bridge.yaml", "bridge-deployment.yaml"),
    ):
        spec = _load(MONITORING / monitor)["spec"]
        label = spec["selector"]["matchLabels"]["app.kubernetes.io/name"]
        [endpoint] = spec["podMetricsEndpoints"]
        assert endpoint["port"] in _container_ports(ROOT / "config" / "base" / manifest, label)


def test_the_dashboard_is_valid_and_every_panel_queries() -> None:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)) >= 10
    for panel in dashboard["panels"]:
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
    titles = " ".join(panel["title"] for panel in dashboard["panels"]).lower()
    for topic in ("open incidents", "time to mitigate", "time to resolve", "actions", "error rate"):
        assert topic in titles
    [annotation] = dashboard["annotations"]["list"]
    assert "mitigator_actions_total" in annotation["expr"]
