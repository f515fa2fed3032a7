"""Fixtures shared by every tier. Integration and e2e tests get one real control plane per
session (or the cluster named by MITIGATOR_TEST_KUBECONFIG) and a fresh namespace per test."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from localkube.processes import wait_until
from localkube.testing import (
    TEST_NAMESPACE_LABEL,
    ClusterAccess,
    cluster_for_tests,
    new_namespace_name,
)
from tests.world import (  # noqa: F401 - fixtures shared by the integration and e2e tiers
    alertmanager,
    bridge,
    crds,
    operator,
    operator_kubeconfig,
    prometheus,
    signals,
)

_LOGS: list[str] = []


@pytest.fixture(scope="session")
def cluster() -> Iterator[ClusterAccess]:
    with cluster_for_tests() as access:
        if access.logs_dir:
            _LOGS.append(str(access.logs_dir))
        yield access


@pytest.fixture(scope="session")
def api_client(cluster: ClusterAccess) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(cluster.kubeconfig))


@pytest.fixture
def namespace(api_client: client.ApiClient) -> Iterator[str]:
    core = client.CoreV1Api(api_client)
    name = new_namespace_name()
    core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={TEST_NAMESPACE_LABEL: "true"})
        )
    )
    # Pods are refused until the namespace's default ServiceAccount exists.
    wait_until(
        lambda: core.read_namespaced_service_account("default", name),
        timeout=30,
        what=f"default ServiceAccount in {name}",
    )
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(
            {"authorization": self.headers.get("Authorization"), "payload": json.loads(body)}
        )
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook_receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Under pytest-xdist each worker has its own control plane: hand its logs folder to the
    # controller, which prints them all.
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["localkube_logs"] = list(_LOGS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    _LOGS.extend(getattr(node, "workeroutput", {}).get("localkube_logs", []))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for folder in _LOGS:
        terminalreporter.write_line(f"localkube: control-plane logs in {folder}")
