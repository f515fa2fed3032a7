"""mitigator.k8s's own HTTP against the real API server: a ServiceAccount token rotated on
disk is picked up on the 401 that the old one meets, and a token that stays wrong is an
ApiError 401 after one more try, not a loop."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes import client

from localkube.testing import ClusterAccess
from mitigator.k8s import ApiError, KubeClient
from tests.support.cli import service_account_kubeconfig

pytestmark = pytest.mark.cluster


def _token_file_kubeconfig(
    cluster: ClusterAccess, api_client: client.ApiClient, namespace: str, tmp_path: Path
) -> tuple[Path, str]:
    """A kubeconfig whose user reads its token from a file (as a pod's mounted token is
    read), and the ServiceAccount's real token."""
    issued = service_account_kubeconfig(
        cluster,
        api_client,
        namespace=namespace,
        name="rotated",
        rules=[],
        destination=tmp_path / "issued.kubeconfig",
    )
    config = yaml.safe_load(issued.read_text())
    token = config["users"][0]["user"].pop("token")
    config["users"][0]["user"]["tokenFile"] = "token"  # relative to the kubeconfig
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    return kubeconfig, token


def test_a_rotated_token_is_read_again_on_a_401(
    cluster: ClusterAccess, api_client: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    kubeconfig, token = _token_file_kubeconfig(cluster, api_client, namespace, tmp_path)
    (tmp_path / "token").write_text("an-expired-token\n")
    kube = KubeClient.from_environment_pooled(str(kubeconfig), pool_size=2)

    (tmp_path / "token").write_text(token + "\n")  # the kubelet rotates it on disk

    assert kube.whoami() == f"system:serviceaccount:{namespace}:rotated"


def test_a_token_that_stays_wrong_is_a_401_after_one_more_try(
    cluster: ClusterAccess, api_client: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    kubeconfig, token = _token_file_kubeconfig(cluster, api_client, namespace, tmp_path)
    (tmp_path / "token").write_text("an-expired-token\n")
    kube = KubeClient.from_environment_pooled(str(kubeconfig), pool_size=2)

    with pytest.raises(ApiError) as refused:
        kube.whoami()

    assert refused.value.status == 401
    assert "an-expired-token" not in str(refused.value)
    assert token not in str(refused.value)
