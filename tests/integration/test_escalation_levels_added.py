"""Escalation runs only for Incidents whose policy has levels (handlers/escalation.py); an
Incident that waits for people, with no event of its own, is still paged once its policy
gains levels."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from localkube.processes import wait_until
from tests.support.kube import GOOD, deployment_manifest, wait_rollout
from tests.support.objects import GROUP, VERSION, Resources, incident_manifest, policy_manifest

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator")]


def test_an_escalated_incident_is_paged_when_its_policy_gains_levels(
    api_client: client.ApiClient, namespace: str, webhook_receiver: tuple[str, list[Any]]
) -> None:
    url, received = webhook_receiver
    apps = client.AppsV1Api(api_client)
    resources = Resources(api_client, namespace)
    apps.create_namespaced_deployment(namespace, deployment_manifest("web", image=GOOD))
    wait_rollout(apps, namespace, "web")
    # No rule for a P2: the Incident escalates at once, and its policy names nobody to page.
    resources.create(
        policy_manifest(
            "paging",
            app="web",
            rules=[{"name": "p0", "when": {"severities": ["P0"]}, "actions": [{"restart": {}}]}],
        )
    )
    resources.create(incident_manifest("page", target="web", severity="P2"))
    incident = resources.wait_phase("page", "Escalated", "Resolved", "Failed")
    assert incident["status"]["phase"] == "Escalated"
    assert incident["status"]["policy"] == "paging"
    assert not incident["status"].get("escalation")

    client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "mitigationpolicies",
        "paging",
        {"spec": {"escalation": [{"after": "0s", "level": 1, "name": "on-call", "webhook": url}]}},
    )
    wait_until(lambda: received, timeout=60, what="level 1 paged after the policy gained it")
    [payload] = [r["payload"] for r in received]
    assert payload["level"] == 1 and payload["levelName"] == "on-call"
    wait_until(
        lambda: (resources.incident("page")["status"].get("escalation") or {}).get("levels"),
        timeout=30,
        what="the notice recorded in status",
    )
    [notice] = resources.incident("page")["status"]["escalation"]["levels"]
    assert notice["level"] == 1 and notice["delivered"] is True
