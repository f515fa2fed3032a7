"""Isolate (security incidents): the target's pods are cut off by a NetworkPolicy that selects
exactly them and denies all ingress and egress, kept (not killed) for forensics with their
evidence saved first; the isolation is recorded, and lifted when a person resolves."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.support.cli import run_cli
from tests.support.kube import deployment_manifest, wait_rollout
from tests.support.objects import Resources, incident_manifest, policy_manifest
from tests.support.responder import Responder

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator")]


def _selected(core: client.CoreV1Api, namespace: str, selector: dict[str, Any]) -> set[str]:
    labels = ",".join(f"{k}={v}" for k, v in selector["matchLabels"].items())
    return {
        p.metadata.name for p in core.list_namespaced_pod(namespace, label_selector=labels).items
    }


def test_isolate_cuts_off_exactly_the_targets_pods_until_resolved(
    api_client: client.ApiClient, cluster: Any, namespace: str, signals: Any
) -> None:
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    networking = client.NetworkingV1Api(api_client)
    for name in ("web", "web-canary"):  # a neighbour whose pods must stay reachable
        apps.create_namespaced_deployment(namespace, deployment_manifest(name, replicas=2))
        wait_rollout(apps, namespace, name)
    resources = Resources(api_client, namespace)
    resources.create(
        policy_manifest(
            "security",
            app="web",
            rules=[{"name": "breach", "actions": [{"isolate": {}}]}],
            window="1s",
            timeout="3s",
        )
    )
    web_pods = _selected(core, namespace, {"matchLabels": {"app": "web"}})

    with Responder(
        api_client, signals, namespace=namespace, name="web", health=lambda _: (0.3, 0.2)
    ):
        resources.create(incident_manifest("breach", target="web", title="credential leak"))
        # Isolation does not make the errors go away: the ladder ends, people take over.
        incident = resources.wait_phase("breach", "Escalated", "Resolved", "Failed")
    assert incident["status"]["phase"] == "Escalated", incident["status"].get("message")
    [step] = incident["status"]["actions"]
    assert (step["type"], step["state"]) == ("isolate", "Applied")
    name = step["after"]["networkPolicy"]

    policy = networking.read_namespaced_network_policy(name, namespace)
    assert policy.spec.policy_types == ["Ingress", "Egress"]
    assert not policy.spec.ingress and not policy.spec.egress  # no rule: everything denied
    selector = api_client.sanitize_for_serialization(policy.spec.pod_selector)
    assert _selected(core, namespace, selector) == web_pods  # the canary's pods not among them
    assert policy.metadata.owner_references[0].uid == incident["metadata"]["uid"]
    # Kept for forensics: the same pods still run, and their evidence was saved first.
    assert _selected(core, namespace, {"matchLabels": {"app": "web"}}) == web_pods
    evidence = core.read_namespaced_config_map(step["evidence"], namespace)
    assert {f"{pod}.app.log" for pod in web_pods} <= set(evidence.data)

    done = run_cli("resolve", "breach", "-n", namespace, kubeconfig=cluster.kubeconfig)
    assert done.code == 0, done.err
    resolved = resources.wait_phase("breach", "Resolved")
    [revert] = resolved["status"]["reverts"]
    assert (revert["actionId"], revert["state"]) == (step["id"], "Reverted")
    with pytest.raises(ApiException) as gone:
        networking.read_namespaced_network_policy(name, namespace)
    assert gone.value.status == 404
