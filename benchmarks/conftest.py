"""Benchmarks run against the same local control plane as the tests (`make bench`); they are
never collected by `make test` (which runs `pytest tests`). Each records its figures through
`benchmarks.harness.record`; `benchmarks.render` turns them into docs/BENCHMARKS.md."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client
from tests.support.kube import create_namespace

from benchmarks.harness import Operator, pooled_client
from localkube.monitoring import Prometheus
from localkube.testing import ClusterAccess

pytest_plugins = ["tests.support.fixtures.cluster", "tests.support.fixtures.world"]

# The controller-manager's client at 100 requests/s instead of 20: the benchmarks start
# thousands of rollouts (setups, 1,000 restarts), which at the default take minutes of the
# run and load the machine while later figures are taken. Not the operator's speed: its
# time to first action is the write, seen before any controller reacts.
os.environ.setdefault("LOCALKUBE_CONTROLLER_QPS", "100")

OperatorFactory = Callable[..., Operator]


@pytest.fixture(scope="module")
def bench_namespace(api_client: client.ApiClient) -> str:
    """A namespace no test operator watches (`mb-*`); left for the cluster's teardown, since
    deleting thousands of objects would load the machine during the next benchmark."""
    return create_namespace(api_client, prefix="mb")


@pytest.fixture(scope="module")
def start_operator(
    operator_kubeconfig: Path, prometheus: Prometheus, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorFactory]:
    """Start `mitigator run` for a namespace, with the operator's own RBAC; stopped after."""
    started: list[Operator] = []

    def start(namespace: str, **env: str) -> Operator:
        log = tmp_path_factory.mktemp("operator") / "operator.log"
        operator = Operator(operator_kubeconfig, prometheus.url, namespace, log, **env)
        operator.start()
        started.append(operator)
        return operator

    yield start
    for operator in started:
        operator.stop()


@pytest.fixture(scope="session")
def cluster_api(cluster: ClusterAccess, crds: None) -> client.ApiClient:
    return pooled_client(cluster)
