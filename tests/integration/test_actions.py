"""Each action against a real Deployment: the object changes exactly as recorded, once."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from mitigator import ACTIONS_ANNOTATION, CLAIM_ANNOTATION
from mitigator.actions.executor import ActionExecutor
from mitigator.models.execution import ActionOutcome
from tests.support.actions import apply_step, revert_step
from tests.support.kube import deployment_manifest, kube_client, wait_rollout

pytestmark = pytest.mark.cluster

GOOD, BAD = "registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.9-bad"


@pytest.fixture
def executor(api_client: client.ApiClient) -> ActionExecutor:
    return ActionExecutor(kube_client(api_client))


def _apply(
    executor: ActionExecutor,
    namespace: str,
    action_type: str,
    params: dict[str, Any],
    *,
    action_id: str | None = None,
    max_replicas: int = 10,
) -> ActionOutcome:
    step = {action_type: params}
    action_id = action_id or f"0-{action_type}"
    return apply_step(
        executor, namespace, "svc", step, action_id=action_id, max_replicas=max_replicas
    )


def _revert(
    executor: ActionExecutor, namespace: str, action_type: str, before: dict[str, Any]
) -> ActionOutcome:
    return revert_step(
        executor, namespace, "svc", action_type, before, action_id=f"0-{action_type}"
    )


def _deploy_bad_release(apps: client.AppsV1Api, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, deployment_manifest("svc", image=GOOD, replicas=2))
    wait_rollout(apps, namespace, "svc")
    apps.patch_namespaced_deployment(
        "svc",
        namespace,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "app", "image": BAD, "env": [{"name": "V", "value": "2"}]}
                        ]
                    }
                }
            }
        },
    )
    wait_rollout(apps, namespace, "svc")


def test_rollback_restores_the_previous_template_exactly_once(
    api_client: client.ApiClient, namespace: str, executor: ActionExecutor
) -> None:
    apps = client.AppsV1Api(api_client)
    _deploy_bad_release(apps, namespace)

    outcome = _apply(executor, namespace, "rollback", {})
    assert outcome.state == "Applied", outcome.message
    assert outcome.before == {"revision": 2, "images": {"app": BAD}}
    assert outcome.after == {"rolledBackToRevision": 1, "images": {"app": GOOD}}
    wait_rollout(apps, namespace, "svc")
    dep = apps.read_namespaced_deployment("svc", namespace)
    container = dep.spec.template.spec.containers[0]
    assert container.image == GOOD
    assert not container.env, "the whole template is restored, not just the image"
    assert "pod-template-hash" not in dep.spec.template.metadata.labels
    # Like `kubectl rollout undo`, revision 1's ReplicaSet is reused and becomes revision 3.
    assert dep.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    assert ACTIONS_ANNOTATION in dep.metadata.annotations

    again = _apply(executor, namespace, "rollback", {})
    assert again.state == "Applied" and again.recovered
    assert again.before == outcome.before
    dep = apps.read_namespaced_deployment("svc", namespace)
    assert dep.metadata.annotations["deployment.kubernetes.io/revision"] == "3"


def test_an_action_decided_on_a_read_no_longer_current_is_decided_again(
    api_client: client.ApiClient, namespace: str, executor: ActionExecutor
) -> None:
    """The executor acts on the tick's read without reading again, but its write tests that
    read: after someone else's rollout it decides on the target as it is now, instead of
    writing what it decided on revision 2 over revision 3."""
    apps = client.AppsV1Api(api_client)
    _deploy_bad_release(apps, namespace)
    kube = kube_client(api_client)
    stale = kube.target_read(kube.read_deployment(namespace, "svc"))
    third = "registry.k8s.io/pause:3.8-worse"
    apps.patch_namespaced_deployment(
        "svc",
        namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": third}]}}}},
    )
    wait_rollout(apps, namespace, "svc")

    outcome = apply_step(executor, namespace, "svc", {"rollback": {}}, action_id="0-r", read=stale)
    assert outcome.state == "Applied", outcome.message
    assert outcome.before == {"revision": 3, "images": {"app": third}}
    assert outcome.after["rolledBackToRevision"] == 2
    dep = apps.read_namespaced_deployment("svc", namespace)
    assert dep.spec.template.spec.containers[0].image == BAD


def test_rollback_to_a_given_revision_and_refusals(
    api_client: client.ApiClient, namespace: str, executor: ActionExecutor
) -> None:
    apps = client.AppsV1Api(api_client)
    _deploy_bad_release(apps, namespace)
    missing = _apply(executor, namespace, "rollback", {"toRevision": 7})
    assert missing.state == "Skipped" and "revision 7" in missing.message

    apps.patch_namespaced_deployment("svc", namespace, {"spec": {"paused": True}})
    paused = _apply(executor, namespace, "rollback", {"toRevision": 1}, action_id="1-rollback")
    assert paused.state == "Skipped" and "paused" in paused.message
    assert (
        apps.read_namespaced_deployment("svc", namespace).spec.template.spec.containers[0].image
        == BAD
    )


def test_scale_is_capped_and_reverted(
    api_client: client.ApiClient, namespace: str, executor: ActionExecutor
) -> None:
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment_manifest("svc", replicas=2))
    wait_rollout(apps, namespace, "svc")
    outcome = _apply(executor, namespace, "scale", {"increment": 10}, max_replicas=5)
    assert outcome.state == "Applied"
    assert outcome.before == {"replicas": 2}
    assert outcome.after == {"replicas": 5, "requested": 12, "capped": True}
    wait_rollout(apps, namespace, "svc")
    assert apps.read_namespaced_deployment("svc", namespace).status.ready_replicas == 5

    reverted = _revert(executor, namespace, "scale", outcome.before)
    assert reverted.state == "Applied", reverted.message
    wait_rollout(apps, namespace, "svc")
    assert apps.read_namespaced_deployment("svc", namespace).spec.replicas == 2


def test_the_last_revert_gives_the_claim_up_in_its_patch(
    api_client: client.ApiClient, namespace: str, executor: ActionExecutor
) -> None:
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment_manifest("svc", replicas=1))
    wait_rollout(apps, namespace, "svc")
    outcome = _apply(executor, namespace, "scale", {"replicas": 2})
    assert outcome.state == "Applied", outcome.message
    claimed = apps.read_namespaced_deployment("svc", namespace).metadata.annotations
    assert CLAIM_ANNOTATION in claimed

    reverted = revert_step(
        executor, namespace, "svc", "scale", outcome.before, action_id="0-scale", release_claim=True
    )
    assert reverted.state == "Applied" and reverted.released_claim, reverted.message
    after = apps.read_namespaced_deployment("svc", namespace)
    assert after.spec.replicas == 1
    assert CLAIM_ANNOTATION not in after.metadata.annotations


def test_an_increment_above_the_cap_never_scales_down(
    api_client: client.ApiClient, namespace: str, executor: ActionExecutor
) -> None:
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment_manifest("svc", replicas=12))
    wait_rollout(apps, namespace, "svc")
    before = apps.read_namespaced_deployment("svc", namespace)
    outcome = _apply(executor, namespace, "scale", {"increment": 2}, max_replicas=10)
    assert outcome.state == "Skipped", outcome.message
    assert outcome.message == (
        "Deployment svc already has 12 replicas (requested 14, capped at maxReplicas 10)"
    )
    after = apps.read_namespaced_deployment("svc", namespace)
    assert after.spec.replicas == 12
    assert after.metadata.generation == before.metadata.generation
    assert ACTIONS_ANNOTATION not in (after.metadata.annotations or {})


def test_set_env_records_previous_values_and_reverts(
    api_client: client.ApiClient, namespace: str, executor: ActionExecutor
) -> None:
    apps = client.AppsV1Api(api_client)
    manifest = deployment_manifest("svc", replicas=1)
    manifest["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "LLM_MODEL", "value": "glm-4.5"}
    ]
    apps.create_namespaced_deployment(namespace, manifest)
    wait_rollout(apps, namespace, "svc")
    outcome = _apply(
        executor,
        namespace,
        "setEnv",
        {"env": {"DISABLE_WEB_SEARCH": "true", "LLM_MODEL": "glm-3.5-turbo"}},
    )
    assert outcome.state == "Applied"
    assert outcome.before == {
        "container": "app",
        "env": {"LLM_MODEL": "glm-4.5"},
        "unset": ["DISABLE_WEB_SEARCH"],
    }
    env = {
        e.name: e.value
        for e in apps.read_namespaced_deployment("svc", namespace)
        .spec.template.spec.containers[0]
        .env
    }
    assert env == {"LLM_MODEL": "glm-3.5-turbo", "DISABLE_WEB_SEARCH": "true"}

    reverted = _revert(executor, namespace, "setEnv", outcome.before)
    assert reverted.state == "Applied", reverted.message
    env = {
        e.name: e.value
        for e in apps.read_namespaced_deployment("svc", namespace)
        .spec.template.spec.containers[0]
        .env
    }
    assert env == {"LLM_MODEL": "glm-4.5"}


def test_restart_stamps_the_template_and_rolls(
    api_client: client.ApiClient, namespace: str, executor: ActionExecutor
) -> None:
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment_manifest("svc", replicas=2))
    wait_rollout(apps, namespace, "svc")
    outcome = _apply(executor, namespace, "restart", {})
    assert outcome.state == "Applied"
    assert outcome.before == {"restartedAt": None}
    wait_rollout(apps, namespace, "svc")
    dep = apps.read_namespaced_deployment("svc", namespace)
    assert (
        dep.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]
        == outcome.after["restartedAt"]
    )
    assert dep.metadata.annotations["deployment.kubernetes.io/revision"] == "2"


def test_maintenance_switches_the_service_and_reverts(
    api_client: client.ApiClient, namespace: str, executor: ActionExecutor
) -> None:
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment_manifest("svc", replicas=3))
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "svc"},
            "spec": {"selector": {"app": "svc"}, "ports": [{"port": 80}]},
        },
    )
    wait_rollout(apps, namespace, "svc")
    outcome = _apply(
        executor,
        namespace,
        "maintenance",
        {"service": "svc", "backendSelector": {"app": "maintenance"}},
    )
    assert outcome.state == "Applied", outcome.message
    assert outcome.before == {"services": {"svc": {"app": "svc"}}, "replicas": 3}
    assert core.read_namespaced_service("svc", namespace).spec.selector == {"app": "maintenance"}
    assert apps.read_namespaced_deployment("svc", namespace).spec.replicas == 0

    reverted = _revert(executor, namespace, "maintenance", outcome.before)
    assert reverted.state == "Applied", reverted.message
    assert core.read_namespaced_service("svc", namespace).spec.selector == {"app": "svc"}
    wait_rollout(apps, namespace, "svc")
    assert apps.read_namespaced_deployment("svc", namespace).status.ready_replicas == 3
