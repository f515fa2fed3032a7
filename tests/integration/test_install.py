"""The install, as an SRE runs it: each overlay of config/ rendered by the project's own
`kubectl kustomize`, applied server-side to the real API server, its Deployments admitted
by the API server's PodSecurity admission (`restricted`, enforced by the overlay's own
Namespace) without a warning and made Available (kwok runs the pods); then the operator run
as the overlay's ServiceAccount (a TokenRequest token, the overlay's exact rules) mitigates
an Incident end to end, and that identity is refused what it must never do.

So that the suite leaves the cluster as it found it, the rendered objects are moved: the
install namespace `mitigator-system` becomes a fresh test namespace, the watched namespace
`luminamind` another one, and cluster-scoped names get that namespace as a suffix. Rules,
pod specs and everything else are applied exactly as rendered. The CRDs are checked against
crds/ but not re-applied (the session installed them)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from localkube.monitoring import Prometheus
from localkube.testing import TEST_NAMESPACE_LABEL, ClusterAccess, new_namespace_name
from tests.support.kube import (
    BAD,
    GOOD,
    create_namespace,
    delete_namespace,
    deploy_good_then_bad,
    deployment_manifest,
    wait_rollout,
)
from tests.support.objects import Resources, incident_manifest, policy_manifest
from tests.support.responder import Responder, image
from tests.support.secret_grants import grant_secrets
from tests.support.world import (
    INSTALL_NAMESPACE,
    ROOT,
    render,
    service_account_token,
    start_operator,
    token_kubeconfig,
)

pytestmark = pytest.mark.cluster

OVERLAYS = ("cluster-wide", "namespaced")
WATCHED = "luminamind"  # the namespaced overlay's example watched namespace
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


@dataclass
class Installed:
    overlay: str
    system: str  # where mitigator-system went
    watched: str  # the namespace the operator is run for (the overlay's, for namespaced)
    docs: list[dict[str, Any]]
    apply_stderr: str


def relocate(docs: list[dict[str, Any]], *, system: str, watched: str) -> list[dict[str, Any]]:
    """The rendered objects, moved into the test's namespaces (see the module docstring)."""
    moved = []
    for doc in yaml.safe_load(yaml.safe_dump(docs)):
        kind, meta = doc["kind"], doc["metadata"]
        if kind == "CustomResourceDefinition":
            continue
        if kind == "Namespace":
            meta["name"] = system
            meta.setdefault("labels", {})[TEST_NAMESPACE_LABEL] = "true"
        elif kind in CLUSTER_SCOPED:
            meta["name"] = f"{meta['name']}-{system}"
        elif meta.get("namespace") == INSTALL_NAMESPACE:
            meta["namespace"] = system
        elif meta.get("namespace") == WATCHED:
            meta["namespace"] = watched
        if kind == "ClusterRoleBinding":
            doc["roleRef"]["name"] = f"{doc['roleRef']['name']}-{system}"
        for subject in doc.get("subjects") or []:
            subject["namespace"] = system
        if kind == "Deployment":
            [container] = doc["spec"]["template"]["spec"]["containers"]
            container["args"] = [
                f"--namespace={watched}" if arg == f"--namespace={WATCHED}" else arg
                for arg in container["args"]
            ]
        moved.append(doc)
    return moved


def _apply(cluster: ClusterAccess, docs: list[dict[str, Any]], *flags: str) -> str:
    result = subprocess.run(
        ["kubectl", "apply", "--server-side", "--field-manager=install-test", *flags, "-f", "-"],
        input=yaml.safe_dump_all(docs),
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


def _delete_cluster_scoped(api_client: client.ApiClient, docs: list[dict[str, Any]]) -> None:
    rbac = client.RbacAuthorizationV1Api(api_client)
    for doc in docs:
        try:
            if doc["kind"] == "ClusterRole":
                rbac.delete_cluster_role(doc["metadata"]["name"])
            elif doc["kind"] == "ClusterRoleBinding":
                rbac.delete_cluster_role_binding(doc["metadata"]["name"])
        except ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture(params=OVERLAYS)
def installed(
    request: pytest.FixtureRequest,
    cluster: ClusterAccess,
    crds: None,
    monitoring_crds: None,  # the base ships PodMonitors and PrometheusRules (config/monitoring)
    api_client: client.ApiClient,
) -> Iterator[Installed]:
    overlay = str(request.param)
    rendered = render(overlay)
    system = new_namespace_name("is")
    watched = create_namespace(api_client, prefix="iw")
    docs = relocate(rendered, system=system, watched=watched)
    try:
        stderr = _apply(cluster, docs)
        yield Installed(overlay, system, watched, rendered, stderr)
    finally:
        _delete_cluster_scoped(api_client, docs)
        delete_namespace(api_client, system)
        delete_namespace(api_client, watched)


def _relocated_deployments(installed: Installed) -> list[dict[str, Any]]:
    docs = relocate(installed.docs, system=installed.system, watched=installed.watched)
    return [doc for doc in docs if doc["kind"] == "Deployment"]


def test_the_overlay_applies_and_its_pods_are_admitted_as_restricted(
    installed: Installed, cluster: ClusterAccess, api_client: client.ApiClient
) -> None:
    assert "Warning" not in installed.apply_stderr, installed.apply_stderr
    # The same check can fail: without the containers' securityContext, the API server's
    # PodSecurity admission warns about the very same Deployments.
    loosened = _relocated_deployments(installed)
    for doc in loosened:
        for container in doc["spec"]["template"]["spec"]["containers"]:
            del container["securityContext"]
    warned = _apply(cluster, loosened, "--dry-run=server")
    assert 'would violate PodSecurity "restricted:latest"' in warned, warned
    assert "allowPrivilegeEscalation != false" in warned, warned
    namespace = client.CoreV1Api(api_client).read_namespace(installed.system)
    assert namespace.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
    apps = client.AppsV1Api(api_client)
    for name in ("mitigator", "mitigator-bridge"):
        # Available means the ReplicaSet's pods were created: PodSecurity admitted them.
        wait_rollout(apps, installed.system, name, timeout=90)
        deployment = apps.read_namespaced_deployment(name, installed.system)
        assert deployment.spec.replicas == 2
    # The CRDs the overlay ships are crds/ as they are (plus the install's label).
    shipped = {
        doc["metadata"]["name"]: doc["spec"]
        for path in sorted((ROOT / "crds").glob("*.yaml"))
        if (doc := yaml.safe_load(path.read_text()))["kind"] == "CustomResourceDefinition"
    }
    rendered = {
        doc["metadata"]["name"]: doc["spec"]
        for doc in installed.docs
        if doc["kind"] == "CustomResourceDefinition"
    }
    assert rendered == shipped


def _as(cluster: ClusterAccess, token: str, tmp_path: Path) -> tuple[Path, client.ApiClient]:
    kubeconfig = token_kubeconfig(cluster, token, tmp_path / "sa-kubeconfig")
    configuration = client.Configuration()
    config.load_kube_config(str(kubeconfig), client_configuration=configuration)  # type: ignore[no-untyped-call]
    return kubeconfig, client.ApiClient(configuration)


def _refused(call: Any, *args: Any) -> int:
    with pytest.raises(ApiException) as refused:
        call(*args)
    return int(refused.value.status)


def test_the_operator_as_the_overlays_service_account_mitigates_and_is_refused_the_rest(  # noqa: PLR0917
    installed: Installed,
    cluster: ClusterAccess,
    api_client: client.ApiClient,
    prometheus: Prometheus,
    signals: Any,
    tmp_path: Path,
) -> None:
    namespace = installed.watched
    token = service_account_token(api_client, installed.system)
    kubeconfig, as_operator = _as(cluster, token, tmp_path)
    apps = client.AppsV1Api(api_client)
    resources = Resources(api_client, namespace)
    deploy_good_then_bad(apps, namespace)
    resources.create(
        policy_manifest(
            "runbooks", app="web", rules=[{"name": "any", "actions": [{"rollback": {}}]}]
        )
    )
    log = tmp_path / "operator.log"

    def health(dep: dict[str, Any]) -> tuple[float, float]:
        return (0.3, 0.2) if image(dep) == BAD else (0.0, 0.2)

    with Responder(api_client, signals, namespace=namespace, name="web", health=health):
        operator = start_operator(
            kubeconfig, prometheus, namespace, log, MITIGATOR_LEASE_NAMESPACE=installed.system
        )
        try:
            resources.create(incident_manifest("bad-deploy", target="web"))
            incident = resources.wait_phase("bad-deploy", "Resolved", "Escalated", "Failed")
        finally:
            operator.terminate()
            operator.wait(timeout=30)
    assert incident["status"]["phase"] == "Resolved", incident["status"].get("message")
    rolled_back = apps.read_namespaced_deployment("web", namespace)
    assert rolled_back.spec.template.spec.containers[0].image == GOOD
    text = log.read_text()
    assert "forbidden" not in text.lower(), text[-3000:]
    assert f"Lease {installed.system}/" in text  # it led through the overlay's Lease Role

    # What that identity must never do.
    sa_apps = client.AppsV1Api(as_operator)
    sa_core = client.CoreV1Api(as_operator)
    assert _refused(sa_apps.delete_namespaced_deployment, "web", namespace) == 403
    assert _refused(sa_core.list_namespaced_secret, namespace) == 403
    assert _refused(sa_core.list_namespaced_secret, installed.system) == 403
    # Secrets: not one, not even by name, in a watched namespace or its own; a team's grant
    # (config/policy-secrets, for the names its policies use) opens exactly those names.
    core = client.CoreV1Api(api_client)
    for name in ("receiver", "unnamed"):
        core.create_namespaced_secret(
            namespace, {"metadata": {"name": name}, "stringData": {"url": "http://x.invalid/t"}}
        )
    for name in ("receiver", "unnamed"):
        assert _refused(sa_core.read_namespaced_secret, name, namespace) == 403
    own = _refused(sa_core.read_namespaced_secret, "mitigator-bridge-token", installed.system)
    assert own == 403
    grant_secrets(
        cluster, api_client, namespace, ["receiver"], service_account_namespace=installed.system
    )
    assert sa_core.read_namespaced_secret("receiver", namespace).metadata.name == "receiver"
    assert _refused(sa_core.read_namespaced_secret, "unnamed", namespace) == 403
    assert _refused(sa_core.list_namespaced_secret, namespace) == 403
    if installed.overlay == "namespaced":
        elsewhere = create_namespace(api_client, prefix="iu")
        try:
            apps.create_namespaced_deployment(elsewhere, deployment_manifest("other"))
            patch = {"spec": {"replicas": 5}}
            assert _refused(sa_apps.patch_namespaced_deployment, "other", elsewhere, patch) == 403
            assert _refused(sa_apps.list_namespaced_deployment, elsewhere) == 403
        finally:
            delete_namespace(api_client, elsewhere)
        # Nothing cluster-wide at all (not even CRD discovery: kopf scans nothing for exact
        # namespace names), and the operator above did its job without it.
        kinds = {d["kind"] for d in installed.docs}
        assert not kinds & {"ClusterRole", "ClusterRoleBinding"}, kinds
