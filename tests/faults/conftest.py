"""The fault tier's own control plane: the same localkube code as the session's, on other
ports and directories, so that killing its API server or etcd never touches the cluster the
other tiers share. Prometheus (read through the tests' signals) is the session's. The plane
is the package's: it is stopped once the fault tests are done, not at the session's end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from localkube.build import ensure_built
from localkube.cluster import LocalCluster
from localkube.monitoring import Prometheus
from localkube.testing import ClusterAccess
from tests.support.faults import OperatorProcess
from tests.support.kube import create_namespace, delete_namespace
from tests.support.world import install_crds, service_account_kubeconfig


@pytest.fixture(scope="package")
def fault_plane() -> Iterator[LocalCluster]:
    bins = ensure_built()
    if str(bins) not in os.environ.get("PATH", ""):
        os.environ["PATH"] = f"{bins}{os.pathsep}{os.environ.get('PATH', '')}"
    plane = LocalCluster.in_tempdir()
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="package")
def fault_access(fault_plane: LocalCluster) -> ClusterAccess:
    return ClusterAccess(kubeconfig=fault_plane.kubeconfig, local=fault_plane)


@pytest.fixture(scope="package")
def fault_api(fault_access: ClusterAccess) -> client.ApiClient:
    api = config.new_client_from_config(config_file=str(fault_access.kubeconfig))
    install_crds(fault_access, api)
    return api


@pytest.fixture(scope="package")
def fault_operator_kubeconfig(
    fault_access: ClusterAccess,
    fault_api: client.ApiClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The operator's ServiceAccount on the fault plane (config/overlays/cluster-wide's RBAC)."""
    destination = tmp_path_factory.mktemp("fault-operator-sa") / "kubeconfig"
    return service_account_kubeconfig(fault_access, fault_api, destination)


@pytest.fixture
def fault_namespace(fault_plane: LocalCluster, fault_api: client.ApiClient) -> Iterator[str]:
    name = create_namespace(fault_api, prefix="ft")
    yield name
    # A test that killed a component leaves it running again; if it did not, say so here.
    assert not [p.name for p in fault_plane.processes if not p.alive()], "a component is down"
    delete_namespace(fault_api, name)


@pytest.fixture
def fault_apps(fault_api: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(fault_api)


@pytest.fixture
def fault_operator(
    fault_operator_kubeconfig: Path,
    prometheus: Prometheus,
    fault_namespace: str,
    tmp_path: Path,
) -> Iterator[OperatorProcess]:
    """The operator for this test's namespace, not started: the test starts (and kills) it."""
    operator = OperatorProcess(
        kubeconfig=fault_operator_kubeconfig,
        prometheus=prometheus,
        namespace=fault_namespace,
        log=tmp_path / "operator.log",
    )
    yield operator
    operator.stop()
    print(f"operator log ({operator.runs} runs): {operator.log}")
