"""The operator's Prometheus connection against a real Prometheus serving HTTPS with basic
auth (--web.config.file): the right CA and password answer; a wrong CA or a wrong password
fails closed, and an Incident triaged through a connection that does not verify is Unknown,
never healthy. TLS is verified by default: no CA given means the system's, which does not know
the test CA either."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from localkube.certs import generate_pki
from localkube.monitoring import Prometheus, WebSecurity
from localkube.processes import free_port, wait_until
from localkube.testing import ClusterAccess
from mitigator.metrics.prometheus import PrometheusConnection, PrometheusProvider
from mitigator.observability.metrics import PROMETHEUS_QUERY_ERRORS
from tests.support.kube import deployment_manifest, wait_rollout
from tests.support.objects import Resources, incident_manifest, policy_manifest
from tests.support.secret_grants import grant_secrets
from tests.support.world import remember_secret, start_operator

pytestmark = pytest.mark.prometheus

USER, PASSWORD = "mitigator", "correct-horse-battery-staple"
remember_secret(PASSWORD)


class SecureWorld:
    def __init__(self, workdir: Path) -> None:
        self.pki = generate_pki(workdir / "pki")
        self.other_ca = generate_pki(workdir / "other-pki").ca_cert
        self.password_file = workdir / "password"
        self.password_file.write_text(PASSWORD)
        self.wrong_password_file = workdir / "wrong-password"
        self.wrong_password_file.write_text("not-the-password")
        self.prometheus = Prometheus(
            workdir=workdir / "prometheus",
            security=WebSecurity(
                cert_file=self.pki.serving_cert,
                key_file=self.pki.serving_key,
                ca_file=self.pki.ca_cert,
                users={USER: PASSWORD},
            ),
        )
        self.registry = CollectorRegistry()
        self.error_ratio = Gauge(
            "mt_error_ratio", "5xx ratio", ["namespace", "deployment"], registry=self.registry
        )
        self.p95 = Gauge(
            "mt_p95_seconds", "p95", ["namespace", "deployment"], registry=self.registry
        )

    def provider(self, **connection: object) -> PrometheusProvider:
        return PrometheusProvider(
            self.prometheus.url,
            connection=PrometheusConnection(**connection),  # type: ignore[arg-type]
        )


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureWorld]:
    world = SecureWorld(tmp_path_factory.mktemp("secure-prometheus"))
    world.prometheus.start()
    port = free_port()
    server, _ = start_http_server(port, addr="127.0.0.1", registry=world.registry)
    world.prometheus.add_targets("signals", [f"127.0.0.1:{port}"], {"job": "signals"})
    yield world
    server.shutdown()
    world.prometheus.stop()


def _errors(reason: str) -> float:
    return PROMETHEUS_QUERY_ERRORS.labels(reason)._value.get()


def test_https_with_basic_auth_answers_and_anything_less_fails_closed(
    secure: SecureWorld,
) -> None:
    good = secure.provider(
        ca_file=str(secure.pki.ca_cert), username=USER, password_file=str(secure.password_file)
    )
    secure.error_ratio.labels("tls", "web").set(0.25)
    query = 'mt_error_ratio{namespace="tls",deployment="web"}'
    wait_until(lambda: good.query(query).known, timeout=30, what="the secure Prometheus to scrape")
    assert good.query(query).value == 0.25

    tls_errors, auth_errors = _errors("tls"), _errors("auth")
    wrong_ca = secure.provider(
        ca_file=str(secure.other_ca), username=USER, password_file=str(secure.password_file)
    )
    sample = wrong_ca.query(query)
    assert (sample.status, sample.value) == ("unreachable", None)
    assert "TLS verification failed" in sample.detail
    default_trust = secure.provider(username=USER, password_file=str(secure.password_file))
    assert default_trust.query(query).status == "unreachable", "TLS is verified by default"
    assert _errors("tls") == tls_errors + 2

    wrong_password = secure.provider(
        ca_file=str(secure.pki.ca_cert),
        username=USER,
        password_file=str(secure.wrong_password_file),
    )
    sample = wrong_password.query(query)
    assert sample.status == "unreachable" and "HTTP 401" in sample.detail
    no_auth = secure.provider(ca_file=str(secure.pki.ca_cert))
    assert no_auth.query(query).status == "unreachable"
    assert _errors("auth") == auth_errors + 2
    assert PASSWORD not in sample.detail


@pytest.mark.cluster
def test_wrong_cas_make_incidents_unknown_and_a_policys_own_credentials_work(
    *,
    secure: SecureWorld,
    operator_kubeconfig: Path,
    cluster: ClusterAccess,
    api_client: client.ApiClient,
    own_namespace: str,
    tmp_path: Path,
) -> None:
    """One operator whose own settings name the wrong CA (with the right password): an
    Incident its default Prometheus is asked about is Unknown, not healthy. A policy naming
    the same Prometheus with credentials by reference (`metrics.auth.secretRef`: CA, basic
    auth, a tenant header from a Secret in its namespace) reads it; the same policy with
    another CA in its Secret reads nothing (Unknown). The operator runs as its ServiceAccount,
    granted `get` on those two Secrets by name (config/policy-secrets) and on nothing else: a
    policy naming a Secret it was not granted (the right credentials, a receiver) fails closed:
    Unknown, and its escalation level not delivered, each reason naming the Secret (403)."""
    namespace = own_namespace
    apps = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    resources = Resources(api_client, namespace)
    credentials = {
        "ca.crt": secure.pki.ca_cert.read_text(),
        "username": USER,
        "password": PASSWORD,
        "header.X-Scope-OrgID": "team-a",
    }
    hook = f"http://127.0.0.1:{free_port()}/services/hook-token-9876543210"
    remember_secret(hook)
    core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": "hook"}, "data": {"url": base64.b64encode(hook.encode()).decode()}},
    )
    for name, ca in (
        ("good", secure.pki.ca_cert),
        ("wrong-ca", secure.other_ca),
        ("ungranted", secure.pki.ca_cert),
    ):
        data = {**credentials, "ca.crt": ca.read_text()}
        core.create_namespaced_secret(
            namespace,
            {
                "metadata": {"name": f"prometheus-{name}"},
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
            },
        )
    grant_secrets(cluster, api_client, namespace, ["prometheus-good", "prometheus-wrong-ca"])
    targets = {
        "web": "prometheus-good",
        "api": "prometheus-wrong-ca",
        "worker": None,
        "batch": "prometheus-ungranted",
    }
    for app, secret in targets.items():
        apps.create_namespaced_deployment(namespace, deployment_manifest(app))
        secure.error_ratio.labels(namespace, app).set(0.3)
        secure.p95.labels(namespace, app).set(0.1)
        policy = policy_manifest(
            f"{app}-runbooks",
            app=app,
            rules=[{"name": "p0", "when": {"severities": ["P0"]}, "actions": [{"restart": {}}]}],
        )
        if secret is not None:
            policy["spec"]["metrics"]["prometheusURL"] = secure.prometheus.url
            policy["spec"]["metrics"]["auth"] = {"secretRef": {"name": secret}}
        if app == "batch":
            receiver = {"name": "team-hook", "urlSecretRef": {"name": "hook", "key": "url"}}
            policy["spec"]["escalation"] = [
                {"after": "0s", "level": 1, "name": "on-call", "receiver": receiver}
            ]
        resources.create(policy)
    for app in targets:
        wait_rollout(apps, namespace, app)
    probe = secure.provider(
        ca_file=str(secure.pki.ca_cert), username=USER, password_file=str(secure.password_file)
    )
    wait_until(
        lambda: probe.query(f'mt_error_ratio{{namespace="{namespace}",deployment="api"}}').known,
        timeout=30,
        what="the secure Prometheus to scrape the test's numbers",
    )
    log = tmp_path / "operator.log"
    operator = start_operator(
        operator_kubeconfig,
        secure.prometheus,
        namespace,
        log,
        MITIGATOR_PROMETHEUS_CA_FILE=str(secure.other_ca),
        MITIGATOR_PROMETHEUS_USERNAME=USER,
        MITIGATOR_PROMETHEUS_PASSWORD_FILE=str(secure.password_file),
    )
    try:
        for name, app in (("seen", "web"), ("blind", "api"), ("default-blind", "worker")):
            resources.create(incident_manifest(name, target=app))
        seen = resources.wait_phase("seen", "Escalated", "Resolved", "Failed")
        blind = resources.wait_phase("blind", "Escalated", "Resolved", "Failed")
        default_blind = resources.wait_phase("default-blind", "Escalated", "Resolved", "Failed")
        resources.create(incident_manifest("forbidden", target="batch"))
        forbidden = resources.wait_phase("forbidden", "Escalated", "Resolved", "Failed")

        def level_1() -> dict[str, Any]:
            escalation = resources.incident("forbidden")["status"].get("escalation") or {}
            levels = escalation.get("levels") or [{}]
            return dict(levels[0])

        wait_until(lambda: level_1().get("attempts"), timeout=30, what="level 1 to be attempted")
    finally:
        operator.terminate()
        operator.wait(timeout=30)
    classification = seen["status"]["classification"]
    assert classification["severity"] == "P1", classification
    assert classification["evidenceComplete"] is True
    for unknown in (blind, default_blind):
        classification = unknown["status"]["classification"]
        assert classification["severity"] == "Unknown", classification
        assert classification["evidenceComplete"] is False
        assert any("TLS verification failed" in r for r in classification["reasons"])
    assert apps.read_namespaced_deployment("worker", namespace).metadata.generation == 1
    # Not granted: never queried without the credentials the policy asked for, never paged;
    # the reasons name the Secret (and no value of it).
    classification = forbidden["status"]["classification"]
    assert classification["severity"] == "Unknown", classification
    where = f"Prometheus credentials Secret {namespace}/prometheus-ungranted unreadable: HTTP 403"
    assert any(where in r for r in classification["reasons"]), classification
    level = level_1()
    assert level["receiver"] == "team-hook" and level["delivered"] is False
    assert f"Secret {namespace}/hook cannot be read: HTTP 403" in level["lastError"], level
    assert "hook-token" not in str(resources.incident("forbidden"))
    assert PASSWORD not in log.read_text()
