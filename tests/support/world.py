"""The parts of the shared test world that tests name: the signals exporter the integration
policies read, where the operator's bridge listens, the operator's environment, the CRDs and
the operator's own RBAC. The fixtures that build the world are in
``tests.support.fixtures.world``."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from prometheus_client import CollectorRegistry, Gauge

from localkube.build import bin_dir
from localkube.monitoring import Prometheus
from localkube.processes import wait_until
from localkube.testing import ClusterAccess
from localkube.upstream import (
    ARGO_CD_APPLICATION_CRD,
    FLUX_KUSTOMIZATION_CRD,
    MONITORING_CRDS,
    fetch,
)

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "manifests" / "prometheus-rules.yaml"
CRD_NAMES = ("incidents.mitigator.luminamind.io", "mitigationpolicies.mitigator.luminamind.io")
# The operator of the session watches these namespaces (tests.support.kube.create_namespace).
OPERATOR_NAMESPACES = "mt-*"


def kubectl(cluster: ClusterAccess, *argv: str, stdin: str | None = None) -> str:
    """Run kubectl against the test cluster as its admin; fail with kubectl's own words."""
    result = subprocess.run(
        ["kubectl", *argv],
        input=stdin,
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(argv)}: {result.stderr.strip()}")
    return result.stdout


def install_crds(cluster: ClusterAccess, api_client: client.ApiClient) -> None:
    """Apply crds/ (a kustomization) and wait until the API server serves both kinds."""
    kubectl(cluster, "apply", "--server-side", "--force-conflicts", "-k", str(ROOT / "crds"))
    ext = client.ApiextensionsV1Api(api_client)

    def established() -> bool:
        for name in CRD_NAMES:
            conditions = ext.read_custom_resource_definition(name).status.conditions or []
            if not any(c.type == "Established" and c.status == "True" for c in conditions):
                return False
        return True

    wait_until(established, timeout=30, what="CRDs to be Established")


def install_upstream_crds(cluster: ClusterAccess, api_client: client.ApiClient) -> None:
    """Argo CD's Application and Flux's Kustomization CRDs, as their projects ship them."""
    files = [fetch(ARGO_CD_APPLICATION_CRD), fetch(FLUX_KUSTOMIZATION_CRD)]
    for path in files:
        kubectl(cluster, "apply", "--server-side", "--force-conflicts", "-f", str(path))
    ext = client.ApiextensionsV1Api(api_client)
    names = ["applications.argoproj.io", "kustomizations.kustomize.toolkit.fluxcd.io"]

    def established() -> bool:
        return all(
            any(
                c.type == "Established" and c.status == "True"
                for c in ext.read_custom_resource_definition(name).status.conditions or []
            )
            for name in names
        )

    wait_until(established, timeout=30, what="the GitOps CRDs to be Established")


def install_monitoring_crds(cluster: ClusterAccess, api_client: client.ApiClient) -> None:
    """The Prometheus Operator's PodMonitor, ServiceMonitor and PrometheusRule CRDs, from its
    Go module (v0.85.0)."""
    for path in [fetch(file) for file in MONITORING_CRDS]:
        kubectl(cluster, "apply", "--server-side", "--force-conflicts", "-f", str(path))
    ext = client.ApiextensionsV1Api(api_client)
    names = [
        f"{plural}.monitoring.coreos.com"
        for plural in ("podmonitors", "servicemonitors", "prometheusrules")
    ]

    def established() -> bool:
        return all(
            any(
                c.type == "Established" and c.status == "True"
                for c in ext.read_custom_resource_definition(name).status.conditions or []
            )
            for name in names
        )

    wait_until(established, timeout=30, what="the monitoring.coreos.com CRDs to be Established")


class Signals:
    """Gauges the tests set; Prometheus scrapes them every second. Policies in these tests
    read them through their own PromQL templates, as a user's policy reads any metric."""

    def __init__(self, prometheus: Prometheus) -> None:
        self.registry = CollectorRegistry()
        labels = ["namespace", "deployment"]
        self.error_ratio = Gauge("mt_error_ratio", "5xx ratio", labels, registry=self.registry)
        self.p95_seconds = Gauge("mt_p95_seconds", "p95 latency", labels, registry=self.registry)
        self.prometheus = prometheus

    def set(
        self, namespace: str, deployment: str, *, error_ratio: float, p95_seconds: float
    ) -> None:
        self.error_ratio.labels(namespace, deployment).set(error_ratio)
        self.p95_seconds.labels(namespace, deployment).set(p95_seconds)

    def wait_scraped(self, namespace: str, deployment: str) -> None:
        """Until Prometheus holds the current values: an alert fires on scraped data, and an
        incident triaged before the first scrape would (rightly) find no data."""
        expected = self.error_ratio.labels(namespace, deployment)._value.get()
        selector = f'mt_error_ratio{{namespace="{namespace}",deployment="{deployment}"}}'

        def scraped() -> bool:
            result = self.prometheus.query(selector)
            return bool(result) and float(result[0]["value"][1]) == expected

        wait_until(scraped, timeout=30, what=f"Prometheus to scrape {selector}")


@dataclass(frozen=True)
class OperatorBridge:
    """Where the session operator's in-process bridge listens, and its bearer token."""

    port: int
    token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1/alerts"


def operator_environment(prometheus_url: str) -> dict[str, str]:
    """The settings of every operator the tests run: fast ticks, the test Prometheus, and this
    checkout's code (not whatever `mitigator` an interpreter finds first)."""
    return {
        "PYTHONPATH": os.pathsep.join(str(ROOT / part) for part in ("operator", "tools", ".")),
        "MITIGATOR_PROMETHEUS_URL": prometheus_url,
        "MITIGATOR_TICK_SECONDS": "0.5",
        "MITIGATOR_ESCALATION_TICK_SECONDS": "0.5",
        "MITIGATOR_PROTECTED_NAMESPACES": "mt-protected-*",
        # Ceilings (issue 11): loopback Prometheus and receivers only; 127.0.0.2 is the
        # address tests use for "not allowed".
        "MITIGATOR_ALLOWED_PROMETHEUS_URLS": "http://127.0.0.1:*,https://127.0.0.1:*",
        "MITIGATOR_ALLOWED_WEBHOOK_HOSTS": "127.0.0.1",
        "MITIGATOR_MAX_REPLICAS": "100",
    }


# ---- the install (config/): its RBAC, tokens of its ServiceAccounts, leader election ----

INSTALL_NAMESPACE = "mitigator-system"
RBAC_KINDS = {"Namespace", "ServiceAccount", "Role", "RoleBinding", "ClusterRole"}
RBAC_KINDS |= {"ClusterRoleBinding"}
# Short Lease timings for the tests' operator processes (the shipped ones are 15/10/2 s).
TEST_LEASE = {
    "MITIGATOR_LEASE_DURATION_SECONDS": "4",
    "MITIGATOR_RENEW_DEADLINE_SECONDS": "3",
    "MITIGATOR_RETRY_PERIOD_SECONDS": "0.5",
}


def render(overlay: str) -> list[dict[str, Any]]:
    """`kubectl kustomize config/overlays/<overlay>` (the built kubectl), as documents."""
    out = subprocess.run(
        [str(bin_dir() / "kubectl"), "kustomize", str(ROOT / "config" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def service_account_token(
    api_client: client.ApiClient, namespace: str, name: str = "mitigator"
) -> str:
    """A token the API server issues for the ServiceAccount (TokenRequest), as a pod gets."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=7200)
    )
    core = client.CoreV1Api(api_client)
    return str(core.create_namespaced_service_account_token(name, namespace, request).status.token)


def token_kubeconfig(cluster: ClusterAccess, token: str, destination: Path) -> Path:
    """The cluster's kubeconfig with the admin certificate replaced by a bearer token."""
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": "mitigator", "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = "mitigator"
    destination.write_text(yaml.safe_dump(config))
    return destination


def service_account_kubeconfig(
    cluster: ClusterAccess, api_client: client.ApiClient, destination: Path
) -> Path:
    """A kubeconfig for the operator's own ServiceAccount with the RBAC of
    config/overlays/cluster-wide (applied as rendered, into mitigator-system): an operator run
    with it proves that RBAC grants everything it needs (RBAC is enforced)."""
    rbac = [doc for doc in render("cluster-wide") if doc["kind"] in RBAC_KINDS]
    kubectl(cluster, "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(rbac))
    token = service_account_token(api_client, INSTALL_NAMESPACE)
    return token_kubeconfig(cluster, token, destination)


def start_operator(
    kubeconfig: Path, prometheus: Prometheus, namespace: str, log: Path, **extra: str
) -> subprocess.Popen[bytes]:
    """The operator as its own process (`mitigator run`) for one namespace, logging to `log`.
    Without the session operator's bridge settings: its port is taken by that operator.
    With leader election as installed (a Lease in mitigator-system, one per watched namespace
    so that tests do not share it), on short timings; `extra` overrides any of it."""
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MITIGATOR_BRIDGE_", "MITIGATOR_LEASE", "MITIGATOR_LEADER"))
    }
    env = {
        **inherited,
        **operator_environment(prometheus.url),
        "KUBECONFIG": str(kubeconfig),
        "MITIGATOR_LEADER_ELECTION": "true",
        "MITIGATOR_LEASE_NAMESPACE": INSTALL_NAMESPACE,
        "MITIGATOR_LEASE_NAME": f"mitigator-leader-{namespace}",
        **TEST_LEASE,
        **extra,
    }
    OPERATOR_LOGS.append(log)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mitigator", "run", "--standalone", "--namespace", namespace],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


# --- Observability (issue 11): the operator's JSON log lines and its /metrics ---

# Every log an operator of this session wrote (the in-process one's and start_operator's),
# and every secret a test handed it (tokens, receiver URLs, passwords): at the end of the
# session none of them may be in any of those logs (fixtures.world's `operator`).
OPERATOR_LOGS: list[Path] = []
SUITE_SECRETS: set[str] = set()


def remember_secret(*values: str) -> None:
    """A secret the operators of this session are given; no log of theirs may contain it."""
    SUITE_SECRETS.update(value for value in values if value)


def scan_operator_logs() -> None:
    assert_no_secret_in([log for log in OPERATOR_LOGS if log.exists()], sorted(SUITE_SECRETS))


def json_log_lines(log: Path) -> list[dict[str, object]]:
    """Every line an operator wrote to `log`, each parsed as one JSON object (a line that is
    not fails the test with its text)."""
    import json

    lines = []
    for number, line in enumerate(log.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            lines.append(json.loads(line))
        except ValueError as exc:
            raise AssertionError(f"{log}:{number} is not JSON: {line[:300]}") from exc
    return lines


def assert_no_secret_in(paths: list[Path], secrets: list[str]) -> None:
    """None of `secrets` appears anywhere in the files (logs) at `paths`."""
    for path in paths:
        text = path.read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, f"a secret ({secret[:4]}...) leaked into {path}"


DASHBOARD = ROOT / "config" / "monitoring" / "grafana-dashboard.json"
# Grafana's built-in variables and the dashboard's own, as Grafana would fill them in.
_GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "15s",
    "$__range": "5m",
    "$namespace": ".*",
}


def dashboard_queries() -> dict[str, str]:
    """Every PromQL expression of the dashboard (panels and annotations), by a name saying
    where it is, with Grafana's variables filled in."""
    import json

    dashboard = json.loads(DASHBOARD.read_text())
    queries: dict[str, str] = {}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            queries[f"panel {panel['title']!r} {target['refId']}"] = target["expr"]
    for annotation in dashboard["annotations"]["list"]:
        queries[f"annotation {annotation['name']!r}"] = annotation["expr"]

    def filled(expr: str) -> str:
        for variable, value in _GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        return expr

    return {name: filled(expr) for name, expr in queries.items()}
