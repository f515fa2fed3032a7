"""The simulated LuminaMind service of one end-to-end test: deployed as `make demo` deploys it
(localkube.demo: the Deployment, its maintenance backend, the Service, the demo policy), in a
namespace of its own, served by its own simulator process, scraped by the session's
Prometheus."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from localkube.demo import (
    SERVICE,
    error_rate_query,
    luminamind_list,
    measured,
    simulator,
    wait_healthy,
)
from localkube.monitoring import Alertmanager, Prometheus
from localkube.processes import ManagedProcess, free_port
from localkube.testing import ClusterAccess
from tests.support.kube import create_namespace, delete_namespace, wait_rollout
from tests.support.objects import GROUP, VERSION, Resources
from tests.support.world import kubectl

# The guide's recovery checklist: error rate under 0.5%.
HEALTHY_ERROR_RATE = 0.005
# Services start in a background thread while another test's stops: Prometheus's scrape
# targets (a dict and one file) are changed by one thread at a time.
_TARGETS = threading.Lock()


@dataclass
class Service:
    """The simulated service of one test: where it runs, and how to poke at it."""

    namespace: str
    apps: client.AppsV1Api
    resources: Resources
    prometheus: Prometheus
    alertmanager: Alertmanager
    sim_port: int
    process: ManagedProcess

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
            SERVICE,
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
            SERVICE,
            self.namespace,
            {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}},
        )

    def deployment(self) -> client.V1Deployment:
        return self.apps.read_namespaced_deployment(SERVICE, self.namespace)

    def value(self, promql: str) -> float | None:
        """A query's value with ``$namespace`` substituted; None when Prometheus has none."""
        return measured(self.prometheus, promql.replace("$namespace", self.namespace))

    def error_rate(self) -> float | None:
        """The 5xx ratio over 15s; 0.0 when no request failed, None when none is counted."""
        return measured(self.prometheus, error_rate_query(self.namespace))

    def healthy(self) -> bool:
        rate = self.error_rate()
        return rate is not None and rate < HEALTHY_ERROR_RATE

    def wait_healthy(self, *, timeout: float = 60) -> float:
        return wait_healthy(self.prometheus, self.namespace, timeout=timeout)

    def incidents(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.resources.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "incidents"
        )["items"]
        return items


def start_service(
    cluster: ClusterAccess,
    api_client: client.ApiClient,
    prometheus: Prometheus,
    alertmanager: Alertmanager,
    logs: Path,
) -> Service:
    """Deploy the service in a new namespace and start its simulator once the rollout is
    complete (a simulator that saw no ready replica would report an outage). Healthy traffic
    is not waited for here: ``Service.wait_healthy``."""
    namespace = create_namespace(api_client)
    apps = client.AppsV1Api(api_client)
    port = free_port()
    process = simulator(
        namespace, port=port, kubeconfig=cluster.kubeconfig, log_path=logs / f"{namespace}.log"
    )
    service = Service(
        namespace, apps, Resources(api_client, namespace), prometheus, alertmanager, port, process
    )
    try:
        kubectl(cluster, "apply", "-f", "-", stdin=luminamind_list(namespace))
        wait_rollout(apps, namespace, SERVICE)
        process.start()
        with _TARGETS:
            prometheus.add_targets(namespace, [f"127.0.0.1:{port}"], {"job": SERVICE})
    except BaseException:
        stop_service(service)
        raise
    return service


def stop_service(service: Service) -> None:
    with _TARGETS:
        service.prometheus.remove_targets(service.namespace)
    service.process.stop()
    delete_namespace(service.apps.api_client, service.namespace)
