"""The world every other test stands on: a real control plane that behaves like Kubernetes."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.processes import wait_until
from tests.support.kube import deployment_manifest, replica_sets_by_revision, wait_rollout

pytestmark = pytest.mark.cluster


def test_deployment_rolls_out_and_keeps_revision_history(
    api_client: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment_manifest("web", replicas=3))
    wait_rollout(apps, namespace, "web")
    dep = apps.read_namespaced_deployment("web", namespace)
    assert dep.status.available_replicas == 3
    available = {c.type: c.status for c in dep.status.conditions}
    assert available["Available"] == "True"
    assert set(replica_sets_by_revision(apps, namespace, "web")) == {"1"}

    apps.patch_namespaced_deployment(
        "web",
        namespace,
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9"}]}
                }
            }
        },
    )
    wait_rollout(apps, namespace, "web")
    revisions = replica_sets_by_revision(apps, namespace, "web")
    assert set(revisions) == {"1", "2"}
    assert revisions["2"].spec.template.spec.containers[0].image == "registry.k8s.io/pause:3.9"
    assert revisions["2"].status.ready_replicas == 3
    # The old ReplicaSet is kept (scaled to zero) so it can be rolled back to.
    assert revisions["1"].spec.template.spec.containers[0].image == "registry.k8s.io/pause:3.10"
    assert revisions["1"].spec.replicas == 0
    dep = apps.read_namespaced_deployment("web", namespace)
    assert dep.metadata.annotations["deployment.kubernetes.io/revision"] == "2"


def test_pods_are_scheduled_and_become_ready(api_client: client.ApiClient, namespace: str) -> None:
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment_manifest("ready", replicas=2))
    wait_rollout(apps, namespace, "ready")
    pods = core.list_namespaced_pod(namespace, label_selector="app=ready").items
    assert len(pods) == 2
    for pod in pods:
        assert pod.spec.node_name, "the scheduler bound the pod to a node"
        assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True"


def test_rbac_denies_a_service_account_without_permissions(
    api_client: client.ApiClient, cluster: object, namespace: str
) -> None:
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment_manifest("guarded", replicas=1))
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody"))
    )
    token = core.create_namespaced_service_account_token(
        "nobody",
        namespace,
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[])),
    ).status.token

    restricted_config = client.Configuration()
    restricted_config.host = api_client.configuration.host
    restricted_config.ssl_ca_cert = api_client.configuration.ssl_ca_cert
    restricted_config.api_key = {"authorization": f"Bearer {token}"}
    restricted = client.AppsV1Api(client.ApiClient(restricted_config))

    with pytest.raises(ApiException) as denied:
        restricted.patch_namespaced_deployment("guarded", namespace, {"spec": {"replicas": 5}})
    assert denied.value.status == 403
    assert "forbidden" in denied.value.body.lower()
    assert f"system:serviceaccount:{namespace}:nobody" in denied.value.body

    # The token itself is valid: granting the verb makes the same request succeed.
    rbac = client.RbacAuthorizationV1Api(api_client)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "patch-deployments"},
            "rules": [
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]}
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "nobody-patch"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "patch-deployments",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "nobody", "namespace": namespace}],
        },
    )

    def patch_allowed() -> bool:
        restricted.patch_namespaced_deployment("guarded", namespace, {"spec": {"replicas": 2}})
        return True

    wait_until(patch_allowed, timeout=30, what="the RoleBinding to take effect")
    assert apps.read_namespaced_deployment("guarded", namespace).spec.replicas == 2
