"""End-to-end fixtures: the simulated LuminaMind service, deployed with its Service, its
maintenance backend and the runbook policy, in a fresh namespace, scraped by Prometheus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from localkube.monitoring import Alertmanager, Prometheus
from localkube.processes import ManagedProcess, free_port, wait_until
from localkube.testing import ClusterAccess
from tests.integration.objects import Resources
from tests.kube import wait_rollout

ROOT = Path(__file__).resolve().parents[2]
GOOD_IMAGE = "registry.luminamind.local/luminamind:1.4.2"
BAD_IMAGE = "registry.luminamind.local/luminamind:1.5.0-bad"


def luminamind_manifests(namespace: str, *, replicas: int = 3) -> list[dict[str, Any]]:
    def deployment(name: str, image: str, count: int) -> dict[str, Any]:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
            "spec": {
                "replicas": count,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": image}]},
                },
            },
        }

    return [
        deployment("luminamind", GOOD_IMAGE, replicas),
        deployment("luminamind-maintenance", "registry.luminamind.local/maintenance-page:1", 1),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "luminamind", "namespace": namespace},
            "spec": {"selector": {"app": "luminamind"}, "ports": [{"port": 80}]},
        },
    ]


@dataclass
class Service:
    """The simulated service of one test: where it runs, and how to poke at it."""

    namespace: str
    apps: client.AppsV1Api
    resources: Resources
    prometheus: Prometheus
    alertmanager: Alertmanager
    sim_port: int

    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.apps.api_client)

    def probe(self) -> tuple[int, str | None]:
        """One request through the Service, as a client sees it: (status, Retry-After)."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.sim_port}/probe", timeout=5
            ) as resp:
                return int(resp.status), resp.headers.get("Retry-After")
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.headers.get("Retry-After")

    def annotate(self, **annotations: str | None) -> None:
        self.apps.patch_namespaced_deployment(
            "luminamind",
            self.namespace,
            {
                "metadata": {
                    "annotations": {
                        f"sim.luminamind.io/{k.replace('_', '-')}": v
                        for k, v in annotations.items()
                    }
                }
            },
        )

    def ship(self, image: str) -> None:
        self.apps.patch_namespaced_deployment(
            "luminamind",
            self.namespace,
            {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}},
        )

    def deployment(self) -> client.V1Deployment:
        return self.apps.read_namespaced_deployment("luminamind", self.namespace)

    def value(self, promql: str) -> float | None:
        result = self.prometheus.query(promql.replace("$namespace", self.namespace))
        return float(result[0]["value"][1]) if result else None

    def healthy(self) -> bool:
        rate = self.error_rate()
        return rate is not None and rate < 0.005

    def error_rate(self) -> float | None:
        return self.value(
            'sum(rate(luminamind_requests_total{namespace="$namespace",status=~"5.."}[15s]))'
            ' / sum(rate(luminamind_requests_total{namespace="$namespace"}[15s]))'
        )

    def incidents(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.resources.custom.list_namespaced_custom_object(
            "mitigator.luminamind.io", "v1alpha1", self.namespace, "incidents"
        )["items"]
        return items


@pytest.fixture
def luminamind(
    *,
    cluster: ClusterAccess,
    api_client: client.ApiClient,
    namespace: str,
    prometheus: Prometheus,
    alertmanager: Alertmanager,
    operator: None,
    tmp_path: Path,
) -> Iterator[Service]:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    manifests = {"apiVersion": "v1", "kind": "List", "items": luminamind_manifests(namespace)}
    subprocess.run(
        ["kubectl", "apply", "-f", "-"],
        input=json.dumps(manifests),
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "kubectl",
            "apply",
            "-n",
            namespace,
            "-f",
            str(ROOT / "examples/policies/luminamind-demo.yaml"),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    apps = client.AppsV1Api(api_client)
    wait_rollout(apps, namespace, "luminamind")
    port = free_port()
    sim = ManagedProcess(
        name="luminamind-sim",
        argv=[
            sys.executable,
            str(ROOT / "examples/simulated_service/luminamind_sim.py"),
            "--namespace",
            namespace,
            "--deployment",
            "luminamind",
            "--port",
            str(port),
            "--kubeconfig",
            str(cluster.kubeconfig),
        ],
        log_path=tmp_path / "sim.log",
    )
    sim.start()
    prometheus.add_targets(namespace, [f"127.0.0.1:{port}"], {"job": "luminamind"})
    service = Service(
        namespace, apps, Resources(api_client, namespace), prometheus, alertmanager, port
    )
    try:
        wait_until(
            lambda: (service.error_rate() or 1) < 0.01,
            timeout=60,
            what="healthy traffic from the simulated service in Prometheus",
        )
        yield service
    finally:
        prometheus.remove_targets(namespace)
        sim.stop()
