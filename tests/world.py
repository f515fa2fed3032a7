"""The shared test world for the integration and end-to-end tiers, one per session: the CRDs
installed, a real Prometheus (with the shipped alert rules) and Alertmanager routing to the
bridge, a test-controlled exporter, and the operator running in-process
(kopf.testing.KopfRunner) with its bridge, for namespaces ``mt-*`` (the per-test ones)."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from localkube.monitoring import Alertmanager, Prometheus
from localkube.processes import free_port, wait_until
from localkube.rules import compressed_rules_file
from localkube.testing import ClusterAccess

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "manifests" / "prometheus-rules.yaml"


@pytest.fixture(scope="session")
def crds(cluster: ClusterAccess, api_client: client.ApiClient) -> None:
    subprocess.run(
        ["kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds")],
        check=True,
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        capture_output=True,
    )
    ext = client.ApiextensionsV1Api(api_client)

    def established() -> bool:
        for name in (
            "incidents.mitigator.luminamind.io",
            "mitigationpolicies.mitigator.luminamind.io",
        ):
            conditions = ext.read_custom_resource_definition(name).status.conditions or []
            if not any(c.type == "Established" and c.status == "True" for c in conditions):
                return False
        return True

    wait_until(established, timeout=30, what="CRDs to be Established")


class Signals:
    """Gauges the tests set; Prometheus scrapes them every second. Policies in these tests
    read them through their own PromQL templates, as a user's policy reads any metric."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["namespace", "deployment"]
        self.error_ratio = Gauge("mt_error_ratio", "5xx ratio", labels, registry=self.registry)
        self.p95_seconds = Gauge("mt_p95_seconds", "p95 latency", labels, registry=self.registry)

        self.prometheus: Prometheus | None = None

    def set(
        self, namespace: str, deployment: str, *, error_ratio: float, p95_seconds: float
    ) -> None:
        self.error_ratio.labels(namespace, deployment).set(error_ratio)
        self.p95_seconds.labels(namespace, deployment).set(p95_seconds)

    def wait_scraped(self, namespace: str, deployment: str) -> None:
        """Until Prometheus holds the current values: an alert fires on scraped data, and an
        incident triaged before the first scrape would (rightly) find no data."""
        assert self.prometheus is not None
        prometheus = self.prometheus
        expected = self.error_ratio.labels(namespace, deployment)._value.get()
        selector = f'mt_error_ratio{{namespace="{namespace}",deployment="{deployment}"}}'

        def scraped() -> bool:
            result = prometheus.query(selector)
            return bool(result) and float(result[0]["value"][1]) == expected

        wait_until(scraped, timeout=30, what=f"Prometheus to scrape {selector}")


@dataclass(frozen=True)
class Bridge:
    port: int
    token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1/alerts"


@pytest.fixture(scope="session")
def bridge() -> Bridge:
    """Where the operator's in-process bridge listens, and its bearer token."""
    return Bridge(port=free_port(), token=secrets.token_urlsafe(16))


@pytest.fixture(scope="session")
def alertmanager(
    tmp_path_factory: pytest.TempPathFactory, bridge: Bridge
) -> Iterator[Alertmanager]:
    instance = Alertmanager(
        workdir=tmp_path_factory.mktemp("alertmanager"),
        webhook_url=bridge.url,
        bearer_token=bridge.token,
        group_wait="1s",
        group_interval="2s",
        repeat_interval="1m",
    )
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, alertmanager: Alertmanager
) -> Iterator[Prometheus]:
    workdir = tmp_path_factory.mktemp("prometheus")
    instance = Prometheus(
        workdir=workdir,
        # The shipped rules on a compressed clock (durations only; see localkube.rules).
        rule_files=[compressed_rules_file(RULES, workdir / "rules.yaml")],
        alertmanager_url=alertmanager.url,
    )
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def signals(prometheus: Prometheus) -> Iterator[Signals]:
    board = Signals()
    board.prometheus = prometheus
    port = free_port()
    server, _ = start_http_server(port, addr="127.0.0.1", registry=board.registry)
    prometheus.add_targets("signals", [f"127.0.0.1:{port}"], {"job": "signals"})
    wait_until(
        lambda: prometheus.query('up{job="signals"} == 1'), timeout=30, what="signals scraped"
    )
    yield board
    server.shutdown()


def operator_environment(prometheus_url: str) -> dict[str, str]:
    return {
        "MITIGATOR_PROMETHEUS_URL": prometheus_url,
        "MITIGATOR_TICK_SECONDS": "0.5",
        "MITIGATOR_ESCALATION_TICK_SECONDS": "0.5",
        "MITIGATOR_PROTECTED_NAMESPACES": "mt-protected-*",
    }


@pytest.fixture(scope="session")
def operator(
    cluster: ClusterAccess, crds: None, prometheus: Prometheus, signals: Signals, bridge: Bridge
) -> Iterator[None]:
    import kopf
    from kopf.testing import KopfRunner

    from mitigator.handlers import register
    from mitigator.settings import OperatorSettings

    os.environ.update(operator_environment(prometheus.url))
    os.environ["MITIGATOR_BRIDGE_PORT"] = str(bridge.port)
    os.environ["MITIGATOR_BRIDGE_TOKEN"] = bridge.token
    os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
    registry = kopf.OperatorRegistry()
    register(registry, OperatorSettings())
    args = ["run", "--standalone", "--namespace", "mt-*"]
    with KopfRunner(args, timeout=60, registry=registry) as runner:
        yield
    assert runner.exit_code == 0, runner.output
    assert runner.exception is None, runner.exception


@pytest.fixture(scope="session")
def operator_kubeconfig(
    cluster: ClusterAccess,
    api_client: client.ApiClient,
    crds: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """A kubeconfig for the operator's own ServiceAccount, bound by manifests/operator.yaml:
    an operator run with it proves that RBAC grants everything it needs (RBAC is enforced)."""
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    subprocess.run(
        ["kubectl", "apply", "-f", str(ROOT / "manifests" / "operator.yaml")],
        check=True,
        env=env,
        capture_output=True,
    )
    core = client.CoreV1Api(api_client)
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=7200)
    )
    token = core.create_namespaced_service_account_token(
        "mitigator", "mitigator-system", request
    ).status.token
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    admin["users"] = [{"name": "mitigator", "user": {"token": token}}]
    admin["contexts"][0]["context"]["user"] = "mitigator"
    path = tmp_path_factory.mktemp("operator-sa") / "kubeconfig"
    path.write_text(yaml.safe_dump(admin))
    return path
