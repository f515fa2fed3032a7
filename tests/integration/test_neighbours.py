"""Other writers of what we change: an autoscaler that owns the replica count (the real HPA
controller of kube-controller-manager), several Services in front of one Deployment, and a
target created after its Incident."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from localkube.processes import wait_until
from mitigator.actions.executor import ActionExecutor
from mitigator.models.execution import ActionOutcome
from tests.support.actions import apply_step, revert_step
from tests.support.kube import deployment_manifest, kube_client, wait_rollout
from tests.support.objects import Resources, incident_manifest, policy_manifest

pytestmark = pytest.mark.cluster


def _apply(
    api_client: client.ApiClient, namespace: str, step: dict[str, Any], *, max_replicas: int = 10
) -> ActionOutcome:
    executor = ActionExecutor(kube_client(api_client))
    return apply_step(
        executor, namespace, "web", step, action_id="0-step", max_replicas=max_replicas
    )


def _revert(
    api_client: client.ApiClient, namespace: str, action_type: str, before: dict[str, Any]
) -> ActionOutcome:
    executor = ActionExecutor(kube_client(api_client))
    return revert_step(executor, namespace, "web", action_type, before, action_id="0-step")


def _autoscaler(namespace: str, *, low: int, high: int) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": low,
            "maxReplicas": high,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 80},
                    },
                }
            ],
        },
    }


def test_a_scale_step_raises_the_autoscalers_floor_instead_of_fighting_it(
    api_client: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(api_client)
    scaling = client.AutoscalingV2Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment_manifest("web", replicas=2))
    wait_rollout(apps, namespace, "web")
    scaling.create_namespaced_horizontal_pod_autoscaler(
        namespace, _autoscaler(namespace, low=2, high=4)
    )

    outcome = _apply(api_client, namespace, {"scale": {"increment": 10}}, max_replicas=6)
    assert outcome.state == "Applied", outcome.message
    assert "HorizontalPodAutoscaler web" in outcome.message
    assert outcome.before == {
        "autoscaler": "web",
        "minReplicas": 2,
        "maxReplicas": 4,
        "replicas": 2,
    }
    assert outcome.after["minReplicas"] == 6 and outcome.after["maxReplicas"] == 6
    hpa = scaling.read_namespaced_horizontal_pod_autoscaler("web", namespace)
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (6, 6)
    # The HPA controller itself scales the Deployment to its new floor, and agrees with it.
    wait_until(
        lambda: (
            apps.read_namespaced_deployment("web", namespace).spec.replicas == 6
            and scaling.read_namespaced_horizontal_pod_autoscaler(
                "web", namespace
            ).status.desired_replicas
            == 6
        ),
        timeout=90,
        what="the HPA controller to scale web to 6",
    )

    reverted = _revert(api_client, namespace, "scale", outcome.before)
    assert reverted.state == "Applied", reverted.message
    hpa = scaling.read_namespaced_horizontal_pod_autoscaler("web", namespace)
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (2, 4)
    wait_until(
        lambda: apps.read_namespaced_deployment("web", namespace).spec.replicas == 4,
        timeout=90,
        what="the HPA controller to bring web back within maxReplicas 4",
    )


def _services(core: client.CoreV1Api, namespace: str) -> None:
    for name, selector in (
        ("web", {"app": "web"}),
        ("web-internal", {"app": "web"}),
        ("other", {"app": "other"}),
    ):
        core.create_namespaced_service(
            namespace,
            {"metadata": {"name": name}, "spec": {"selector": selector, "ports": [{"port": 80}]}},
        )


def _selectors(core: client.CoreV1Api, namespace: str) -> dict[str, dict[str, str]]:
    return {s.metadata.name: s.spec.selector for s in core.list_namespaced_service(namespace).items}


def test_maintenance_switches_every_service_of_the_target_or_refuses(
    api_client: client.ApiClient, namespace: str
) -> None:
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment_manifest("web", replicas=3))
    wait_rollout(apps, namespace, "web")
    _services(core, namespace)
    original = _selectors(core, namespace)
    backend = {"app": "maintenance"}

    unrelated = _apply(
        api_client, namespace, {"maintenance": {"service": "other", "backendSelector": backend}}
    )
    assert unrelated.state == "Skipped"
    assert "Service other does not select the pods of web" in unrelated.message
    refused = _apply(
        api_client,
        namespace,
        {
            "maintenance": {
                "service": "web",
                "backendSelector": backend,
                "otherServices": "refuse",
            }
        },
    )
    assert refused.state == "Skipped" and "web-internal" in refused.message
    assert _selectors(core, namespace) == original
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 3

    switched = _apply(api_client, namespace, {"maintenance": {"backendSelector": backend}})
    assert switched.state == "Applied", switched.message
    assert switched.before == {
        "services": {"web": {"app": "web"}, "web-internal": {"app": "web"}},
        "replicas": 3,
    }
    assert _selectors(core, namespace) == {**original, "web": backend, "web-internal": backend}
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 0

    reverted = _revert(api_client, namespace, "maintenance", switched.before)
    assert reverted.state == "Applied", reverted.message
    assert _selectors(core, namespace) == original
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 3


@pytest.mark.usefixtures("operator")
def test_an_incident_created_before_its_deployment_waits_for_it(
    api_client: client.ApiClient, namespace: str, signals: Any
) -> None:
    resources = Resources(api_client, namespace)
    resources.create(
        policy_manifest(
            "late",
            app="web",
            rules=[{"name": "any", "actions": [{"restart": {}}]}],
            guardrails={"targetWait": "2m"},
        )
    )
    resources.create(incident_manifest("early", target="web"))
    wait_until(
        lambda: (
            "waiting for Deployment"
            in ((resources.incident("early").get("status") or {}).get("message") or "")
        ),
        timeout=30,
        what="the incident to wait for its Deployment",
    )
    apps = client.AppsV1Api(api_client)
    signals.set(namespace, "web", error_ratio=0.0, p95_seconds=0.2)
    apps.create_namespaced_deployment(namespace, deployment_manifest("web", replicas=1))
    wait_rollout(apps, namespace, "web")
    signals.wait_scraped(namespace, "web")
    incident = resources.wait_phase("early", "Resolved", "Escalated", "Failed", timeout=90)
    assert incident["status"]["phase"] == "Resolved", incident["status"].get("message")
    assert [a["state"] for a in incident["status"]["actions"]] == ["Applied"]


@pytest.mark.usefixtures("operator")
def test_an_incident_whose_deployment_never_comes_fails_with_the_reason(
    api_client: client.ApiClient, namespace: str
) -> None:
    resources = Resources(api_client, namespace)
    resources.create(
        policy_manifest(
            "late",
            app="web",
            rules=[{"name": "any", "actions": [{"restart": {}}]}],
            guardrails={"targetWait": "3s"},
        )
    )
    resources.create(incident_manifest("orphan", target="web"))
    status = resources.wait_phase("orphan", "Failed", "Resolved", "Escalated")["status"]
    assert status["phase"] == "Failed"
    assert status["message"] == f"Deployment {namespace}/web not found (waited 3s)"
