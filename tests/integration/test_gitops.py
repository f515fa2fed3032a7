"""Targets applied by GitOps tools, against their real CRDs (Argo CD's Application, Flux's
Kustomization, from the projects' Go modules): suspended for the incident and restored,
refused naming the tool, or acted on with a warning; and a mitigation that a tool (played here
by the test) re-applies over is escalated, not fought in a loop."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from localkube.processes import wait_until
from tests.support.kube import BAD, GOOD, deployment_manifest, wait_rollout
from tests.support.objects import Resources, incident_manifest, policy_manifest
from tests.support.responder import Responder, image

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator", "gitops_crds")]

ARGO = ("argoproj.io", "v1alpha1", "applications")
FLUX = ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations")


def _application(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "shop"},
        "spec": {
            "project": "default",
            "source": {"repoURL": "https://git.example/shop.git", "path": "deploy"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
    }


def _kustomization() -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "apps"},
        "spec": {
            "interval": "1m",
            "path": "./deploy",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "shop"},
        },
    }


def _get(api_client: client.ApiClient, resource: tuple[str, str, str], ns: str, name: str) -> Any:
    group, version, plural = resource
    return client.CustomObjectsApi(api_client).get_namespaced_custom_object(
        group, version, ns, plural, name
    )


def _create(
    api_client: client.ApiClient, resource: tuple[str, str, str], ns: str, body: Any
) -> None:
    group, version, plural = resource
    client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        group, version, ns, plural, body
    )


def _bad_release(
    apps: client.AppsV1Api, namespace: str, *, labels: dict[str, str], annotations: dict[str, str]
) -> None:
    manifest = deployment_manifest("web", image=GOOD, replicas=1, labels=labels)
    manifest["metadata"]["annotations"] = annotations
    apps.create_namespaced_deployment(namespace, manifest)
    wait_rollout(apps, namespace, "web")
    apps.patch_namespaced_deployment(
        "web",
        namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": BAD}]}}}},
    )
    wait_rollout(apps, namespace, "web")


def _policy(mode: str, *, window: str = "2s") -> dict[str, Any]:
    return policy_manifest(
        "gitops",
        app="web",
        rules=[{"name": "bad-deploy", "actions": [{"rollback": {}}], "gitops": mode}],
        window=window,
    )


def _bad_image_fails(dep: dict[str, Any]) -> tuple[float, float]:
    return (0.3, 0.2) if image(dep) == BAD else (0.0, 0.2)


def test_argo_cd_self_heal_is_suspended_for_the_incident_and_restored(
    api_client: client.ApiClient, namespace: str, signals: Any
) -> None:
    apps = client.AppsV1Api(api_client)
    _create(api_client, ARGO, namespace, _application(namespace))
    tracking = {
        "argocd.argoproj.io/tracking-id": f"{namespace}_shop:apps/Deployment:{namespace}/web"
    }
    _bad_release(apps, namespace, labels={}, annotations=tracking)
    resources = Resources(api_client, namespace)
    resources.create(_policy("suspend", window="4s"))
    with Responder(api_client, signals, namespace=namespace, name="web", health=_bad_image_fails):
        resources.create(incident_manifest("drift", target="web"))
        seen = resources.wait_phase("drift", "Verifying", "Resolved", "Escalated", "Failed")
        assert seen["status"]["phase"] == "Verifying", seen["status"]
        during = _get(api_client, ARGO, namespace, "shop")
        assert during["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": False}
        incident = resources.wait_phase("drift", "Resolved", "Escalated", "Failed")
    status = incident["status"]
    assert status["phase"] == "Resolved", status.get("message")
    gitops = status["gitops"]
    assert (gitops["tool"], gitops["kind"], gitops["name"]) == ("Argo CD", "Application", "shop")
    assert (gitops["mode"], gitops["state"]) == ("suspend", "Restored")
    assert (gitops["before"], gitops["after"]) == ({"selfHeal": True}, {"selfHeal": False})
    after = _get(api_client, ARGO, namespace, "shop")
    assert after["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    dep = apps.read_namespaced_deployment("web", namespace)
    assert dep.spec.template.spec.containers[0].image == GOOD


def test_flux_is_suspended_and_resumed(
    api_client: client.ApiClient, namespace: str, signals: Any
) -> None:
    apps = client.AppsV1Api(api_client)
    _create(api_client, FLUX, namespace, _kustomization())
    labels = {
        "kustomize.toolkit.fluxcd.io/name": "apps",
        "kustomize.toolkit.fluxcd.io/namespace": namespace,
    }
    _bad_release(apps, namespace, labels=labels, annotations={})
    resources = Resources(api_client, namespace)
    resources.create(_policy("suspend", window="4s"))
    with Responder(api_client, signals, namespace=namespace, name="web", health=_bad_image_fails):
        resources.create(incident_manifest("drift", target="web"))
        resources.wait_phase("drift", "Verifying", "Resolved", "Escalated", "Failed")
        assert _get(api_client, FLUX, namespace, "apps")["spec"]["suspend"] is True
        incident = resources.wait_phase("drift", "Resolved", "Escalated", "Failed")
    assert incident["status"]["phase"] == "Resolved", incident["status"].get("message")
    assert incident["status"]["gitops"]["state"] == "Restored"
    assert _get(api_client, FLUX, namespace, "apps")["spec"]["suspend"] is False


def test_refuse_names_the_tool_and_changes_nothing(
    api_client: client.ApiClient, namespace: str, signals: Any
) -> None:
    apps = client.AppsV1Api(api_client)
    _create(api_client, FLUX, namespace, _kustomization())
    labels = {"kustomize.toolkit.fluxcd.io/name": "apps"}
    _bad_release(apps, namespace, labels=labels, annotations={})
    before = apps.read_namespaced_deployment("web", namespace)
    resources = Resources(api_client, namespace)
    resources.create(_policy("refuse"))
    with Responder(api_client, signals, namespace=namespace, name="web", health=_bad_image_fails):
        resources.create(incident_manifest("drift", target="web"))
        incident = resources.wait_phase("drift", "Escalated", "Resolved", "Failed")
    status = incident["status"]
    assert status["phase"] == "Escalated"
    assert f"applied by Flux Kustomization {namespace}/apps" in status["message"]
    assert status["gitops"]["state"] == "Refused"
    after = apps.read_namespaced_deployment("web", namespace)
    assert after.metadata.generation == before.metadata.generation
    assert "suspend" not in _get(api_client, FLUX, namespace, "apps")["spec"]


def test_a_tool_reapplying_the_old_spec_is_detected_not_fought(
    api_client: client.ApiClient, namespace: str, signals: Any
) -> None:
    """proceed: the operator acts with a warning; the test then plays Argo CD's self-heal,
    putting the bad image back, as Git still says."""
    apps = client.AppsV1Api(api_client)
    _create(api_client, ARGO, namespace, _application(namespace))
    tracking = {
        "argocd.argoproj.io/tracking-id": f"{namespace}_shop:apps/Deployment:{namespace}/web"
    }
    _bad_release(apps, namespace, labels={}, annotations=tracking)
    resources = Resources(api_client, namespace)
    resources.create(_policy("proceed", window="30s"))
    core = client.CoreV1Api(api_client)
    with Responder(api_client, signals, namespace=namespace, name="web", health=_bad_image_fails):
        resources.create(incident_manifest("drift", target="web"))
        resources.wait_phase("drift", "Verifying", "Resolved", "Escalated", "Failed")
        apps.patch_namespaced_deployment(  # the tool re-applies what Git holds
            "web",
            namespace,
            {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": BAD}]}}}},
        )
        incident = resources.wait_phase("drift", "Escalated", "Resolved", "Failed")
    status = incident["status"]
    assert status["phase"] == "Escalated"
    assert "undone behind the operator's back" in status["message"]
    assert f"Argo CD Application {namespace}/shop" in status["message"]
    assert [a["state"] for a in status["actions"]] == ["Applied"]  # not applied again
    assert status["gitops"]["state"] == "Proceeded"
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["GitOpsManaged"] == "True"
    wait_until(
        lambda: any(
            e.type == "Warning" and e.reason == "GitOps"
            for e in core.list_namespaced_event(namespace).items
            if e.involved_object.kind == "Deployment"
        ),
        timeout=30,
        what="a warning Event on the Deployment naming the tool",
    )
