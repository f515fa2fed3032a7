"""Operator-wide ceilings a namespaced policy cannot exceed (tests.support.world's operator
environment: Prometheus and receivers on 127.0.0.1 only, maxReplicas at most 100). A policy
outside them is Invalid with the reason, and nothing is requested from an address that is not
allowed: a listener there hears nothing, even once an Incident would have used the policy."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client

from localkube.processes import wait_until
from tests.support.kube import deployment_manifest, wait_rollout
from tests.support.objects import Resources, incident_manifest, policy_manifest
from tests.support.world import remember_secret

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator")]

# Loopback, but not the allowed 127.0.0.1: what "a URL inside the cluster" stands for here.
NOT_ALLOWED_HOST = "127.0.0.2"


class _Counting(BaseHTTPRequestHandler):
    hits: list[str]

    def _any(self) -> None:
        type(self).hits.append(f"{self.command} {self.path}")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status":"success","data":{"resultType":"vector","result":[]}}')

    def do_GET(self) -> None:
        self._any()

    def do_POST(self) -> None:
        self._any()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.2 that counts every request it gets."""
    hits: list[str] = []
    handler = type("Counting", (_Counting,), {"hits": hits})
    server = ThreadingHTTPServer((NOT_ALLOWED_HOST, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{NOT_ALLOWED_HOST}:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def _valid(resources: Resources, name: str) -> dict[str, Any]:
    def condition() -> dict[str, Any] | None:
        conditions = (resources.policy(name).get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == "Valid"), None)

    wait_until(lambda: condition() is not None, timeout=30, what=f"policy {name}'s Valid")
    found = condition()
    assert found is not None
    return found


def test_policies_outside_the_ceilings_are_invalid_and_their_urls_never_requested(
    api_client: client.ApiClient, namespace: str, listener: tuple[str, list[str]]
) -> None:
    url, hits = listener
    apps = client.AppsV1Api(api_client)
    resources = Resources(api_client, namespace)
    apps.create_namespaced_deployment(namespace, deployment_manifest("web"))
    wait_rollout(apps, namespace, "web")
    rules = [{"name": "any", "actions": [{"restart": {}}]}]
    resources.create(policy_manifest("elsewhere", app="web", rules=rules, prometheus_url=url))
    resources.create(
        policy_manifest(
            "leaky-hook",
            app="other",
            rules=rules,
            escalation=[{"after": "0s", "level": 1, "webhook": f"{url}/hook"}],
        )
    )
    resources.create(
        policy_manifest("huge", app="other", rules=rules, guardrails={"maxReplicas": 500})
    )
    expected = {
        "elsewhere": f"metrics.prometheusURL {url} is not allowed by the operator",
        "leaky-hook": f"host {NOT_ALLOWED_HOST} is not allowed by the operator",
        "huge": "guardrails.maxReplicas 500 is above the operator's ceiling of 100",
    }
    for name, reason in expected.items():
        valid = _valid(resources, name)
        assert (valid["status"], valid["reason"]) == ("False", "NotAllowed"), valid
        assert reason in valid["message"]

    # An Incident on the target: the only covering policy is not allowed, so nothing is
    # queried from its Prometheus; the Incident escalates with the reason instead.
    resources.create(incident_manifest("covered-by-elsewhere", target="web", severity="P1"))
    incident = resources.wait_phase("covered-by-elsewhere", "Escalated", "Resolved", "Failed")
    assert "invalid policies ignored: elsewhere" in incident["status"]["message"]
    assert hits == [], f"{NOT_ALLOWED_HOST} was requested: {hits}"


def test_a_receiver_whose_secret_names_a_host_not_allowed_is_refused_unrequested(
    api_client: client.ApiClient, namespace: str, listener: tuple[str, list[str]]
) -> None:
    url, hits = listener
    apps = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    resources = Resources(api_client, namespace)
    apps.create_namespaced_deployment(namespace, deployment_manifest("web"))
    wait_rollout(apps, namespace, "web")
    secret_url = f"{url}/services/hidden-token-0123456789"
    remember_secret("hidden-token-0123456789")
    core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "hook"},
            "data": {"url": base64.b64encode(secret_url.encode()).decode()},
        },
    )
    resources.create(
        policy_manifest(
            "paging",
            app="web",
            # No rule matches a P2: the Incident escalates at once, and level 1 is due.
            rules=[{"name": "p0", "when": {"severities": ["P0"]}, "actions": [{"restart": {}}]}],
            escalation=[
                {
                    "after": "0s",
                    "level": 1,
                    "name": "on-call",
                    "receiver": {
                        "name": "team-hook",
                        "urlSecretRef": {"name": "hook", "key": "url"},
                    },
                }
            ],
        )
    )
    resources.create(incident_manifest("page", target="web", severity="P2"))
    resources.wait_phase("page", "Escalated", "Resolved", "Failed")

    def notice() -> dict[str, Any]:
        status = resources.incident("page").get("status") or {}
        levels = (status.get("escalation") or {}).get("levels") or []
        return levels[0] if levels else {}

    wait_until(lambda: notice().get("attempts"), timeout=30, what="level 1 to be attempted")
    level = notice()
    assert level["receiver"] == "team-hook" and level["delivered"] is False
    assert f"host {NOT_ALLOWED_HOST} is not allowed" in level["lastError"]
    assert "hidden-token" not in str(resources.incident("page"))
    assert hits == [], f"{NOT_ALLOWED_HOST} was requested: {hits}"
