"""config/monitoring against the real thing: the Prometheus Operator's own CRDs (from its Go
module, v0.85.0) accept every object in a server-side dry-run (and refuse a broken one, so
the check can fail); promtool accepts both PrometheusRules' groups; and every PromQL
expression of the dashboard is accepted by the real Prometheus's /api/v1/query."""

from __future__ import annotations

import subprocess
import urllib.error
from pathlib import Path
from typing import Any

import pytest
import yaml

from localkube.monitoring import Prometheus
from localkube.testing import ClusterAccess
from tests.support.world import ROOT, dashboard_queries, kubectl

pytestmark = pytest.mark.cluster

MONITORING = ROOT / "config" / "monitoring"


def _rendered(cluster: ClusterAccess) -> list[dict[str, Any]]:
    return [
        doc for doc in yaml.safe_load_all(kubectl(cluster, "kustomize", str(MONITORING))) if doc
    ]


def test_monitoring_objects_pass_a_server_side_dry_run_against_the_upstream_crds(
    cluster: ClusterAccess, monitoring_crds: None, namespace: str
) -> None:
    documents = _rendered(cluster)
    kinds = sorted(doc["kind"] for doc in documents)
    assert kinds == ["ConfigMap", "PodMonitor", "PodMonitor", "PrometheusRule", "PrometheusRule"]
    out = kubectl(
        cluster,
        "apply",
        "--server-side",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        "-",
        stdin=yaml.safe_dump_all(documents),
    )
    assert out.count("serverside-applied (server dry run)") == len(documents), out
    # The CRDs do validate: a PodMonitor with a malformed endpoint is refused.
    [monitor] = [d for d in documents if d["metadata"]["name"] == "mitigator-operator"]
    monitor["spec"]["podMetricsEndpoints"][0]["scheme"] = "gopher"
    with pytest.raises(AssertionError, match="scheme"):
        kubectl(
            cluster,
            "apply",
            "--server-side",
            "--dry-run=server",
            "-n",
            namespace,
            "-f",
            "-",
            stdin=yaml.safe_dump(monitor),
        )


def test_both_prometheus_rules_pass_promtool(cluster: ClusterAccess, tmp_path: Path) -> None:
    rules = [d for d in _rendered(cluster) if d["kind"] == "PrometheusRule"]
    names = set()
    for rule in rules:
        path = tmp_path / f"{rule['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
        result = subprocess.run(
            ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
        names |= {r.get("alert") for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {
        "MitigatorOperatorDown",
        "MitigatorNoLeader",
        "MitigatorEscalationsFailing",
        "MitigatorIncidentStuck",
        "HighErrorRate",
    } <= names


def test_every_dashboard_query_is_accepted_by_prometheus(prometheus: Prometheus) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 12
    refused = {}
    for name, expr in queries.items():
        try:
            prometheus.query(expr)
        except urllib.error.HTTPError as exc:
            refused[name] = exc.read().decode()[:300]
    assert not refused, refused
