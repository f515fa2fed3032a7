"""Deployments, rollouts and test namespaces over the real API (integration, e2e, benchmarks)."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.processes import wait_until
from localkube.testing import TEST_NAMESPACE_LABEL, new_namespace_name
from mitigator.k8s import KubeClient
from mitigator.k8s.connect import client_of

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
# The runbook's bad deploy: the same image under a tag the responders treat as broken.
GOOD, BAD = PAUSE_IMAGE, f"{PAUSE_IMAGE}-bad"


def kube_client(api_client: client.ApiClient) -> KubeClient:
    """mitigator's client to where a test's kubernetes ApiClient points, with the same
    credentials and default headers (an Impersonate-User, say)."""
    headers = {k: v for k, v in api_client.default_headers.items() if k != "User-Agent"}
    return client_of(api_client.configuration, headers=headers)


def deployment_manifest(
    name: str, *, image: str = PAUSE_IMAGE, replicas: int = 2, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    selector = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {**selector, **(labels or {})}},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": selector},
                "spec": {
                    "containers": [{"name": "app", "image": image}],
                    # kwok's fake nodes carry no taint; a real cluster (kind) runs pause.
                    "terminationGracePeriodSeconds": 0,
                },
            },
        },
    }


def rollout_complete(apps: client.AppsV1Api, namespace: str, name: str) -> bool:
    """The same test `kubectl rollout status` applies. (The API server omits a replica count
    of zero from the status, so an absent count is 0 here, not unknown.)"""
    dep = apps.read_namespaced_deployment(name, namespace)
    status, spec = dep.status, dep.spec
    return bool(
        status.observed_generation is not None
        and status.observed_generation >= dep.metadata.generation
        and (status.updated_replicas or 0) == spec.replicas
        and (status.replicas or 0) == spec.replicas
        and (status.available_replicas or 0) == spec.replicas
    )


def wait_rollout(apps: client.AppsV1Api, namespace: str, name: str, *, timeout: float = 60) -> None:
    wait_until(
        lambda: rollout_complete(apps, namespace, name),
        timeout=timeout,
        what=f"rollout of {namespace}/{name}",
    )


def replica_sets_by_revision(
    apps: client.AppsV1Api, namespace: str, name: str
) -> dict[str, client.V1ReplicaSet]:
    owned = [
        rs
        for rs in apps.list_namespaced_replica_set(namespace).items
        if any(
            ref.kind == "Deployment" and ref.name == name
            for ref in rs.metadata.owner_references or []
        )
    ]
    return {rs.metadata.annotations["deployment.kubernetes.io/revision"]: rs for rs in owned}


def create_namespace(api_client: client.ApiClient, prefix: str = "mt") -> str:
    """A fresh namespace labelled as the suite's, ready for pods (its default ServiceAccount
    exists: pods are refused until it does). ``mt-*`` namespaces are the session operator's;
    any other prefix is one it does not watch."""
    core = client.CoreV1Api(api_client)
    name = new_namespace_name(prefix)
    core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={TEST_NAMESPACE_LABEL: "true"})
        )
    )
    wait_until(
        lambda: core.read_namespaced_service_account("default", name),
        timeout=30,
        what=f"default ServiceAccount in {name}",
    )
    return name


def delete_namespace(api_client: client.ApiClient, name: str) -> None:
    """Delete it without waiting (the namespace controller finishes the job)."""
    try:
        client.CoreV1Api(api_client).delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


def deploy_good_then_bad(apps: client.AppsV1Api, namespace: str, name: str = "web") -> None:
    """A Deployment rolled out at GOOD, then at BAD (revision 2): what a rollback undoes."""
    apps.create_namespaced_deployment(namespace, deployment_manifest(name, image=GOOD))
    wait_rollout(apps, namespace, name)
    apps.patch_namespaced_deployment(
        name,
        namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": BAD}]}}}},
    )
    wait_rollout(apps, namespace, name)
