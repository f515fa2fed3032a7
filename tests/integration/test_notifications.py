"""Notifications in PagerDuty's Events API v2 format: a trigger when the level falls due,
then, once the incident is resolved, a resolve with the same dedup_key; the routing key and
URL come from a Secret and appear in no status. A receiver that fails is retried with
backoff, each attempt recorded."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from kubernetes import client

from localkube.processes import free_port, wait_until
from tests.support.kube import BAD, deploy_good_then_bad
from tests.support.objects import Resources, incident_manifest, policy_manifest
from tests.support.responder import Responder, image
from tests.support.world import remember_secret

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator")]

ROUTING_KEY = "R0UT1NGKEY0123456789abcdef012345"


def _secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def test_pagerduty_trigger_then_resolve_with_the_same_dedup_key(
    api_client: client.ApiClient,
    namespace: str,
    signals: Any,
    webhook_receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = webhook_receiver
    remember_secret(ROUTING_KEY)
    apps = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    resources = Resources(api_client, namespace)
    core.create_namespaced_secret(
        namespace, _secret("pagerduty", {"url": f"{url}/v2/enqueue", "routing-key": ROUTING_KEY})
    )
    deploy_good_then_bad(apps, namespace)
    resources.create(
        policy_manifest(
            "paging",
            app="web",
            rules=[{"name": "any", "actions": [{"rollback": {}}]}],
            # Long enough that level 1 (due at detection) is paged before the incident
            # resolves: an incident resolved before its first level falls due pages nobody.
            window="6s",
            escalation=[
                {
                    "after": "0s",
                    "level": 1,
                    "name": "on-call",
                    "receiver": {
                        "name": "pagerduty-oncall",
                        "format": "pagerduty",
                        "urlSecretRef": {"name": "pagerduty", "key": "url"},
                        "routingKeySecretRef": {"name": "pagerduty", "key": "routing-key"},
                    },
                },
                {
                    "after": "0s",
                    "level": 2,
                    "name": "lead",
                    "webhook": f"http://127.0.0.1:{free_port()}/down",
                },
            ],
        )
    )

    def health(dep: dict[str, Any]) -> tuple[float, float]:
        return (0.3, 0.2) if image(dep) == BAD else (0.0, 0.2)

    with Responder(api_client, signals, namespace=namespace, name="web", health=health):
        resources.create(incident_manifest("paged", target="web"))
        incident = resources.wait_phase("paged", "Resolved", "Escalated", "Failed")
    assert incident["status"]["phase"] == "Resolved", incident["status"].get("message")
    wait_until(
        lambda: [r["payload"]["event_action"] for r in received] == ["trigger", "resolve"],
        timeout=30,
        what="a PagerDuty trigger, then a resolve",
    )
    trigger, resolve = (r["payload"] for r in received)
    assert trigger["routing_key"] == resolve["routing_key"] == ROUTING_KEY
    assert (
        trigger["dedup_key"] == resolve["dedup_key"] == f"mitigator-{incident['metadata']['uid']}"
    )
    assert trigger["payload"]["severity"] == "error"  # P1
    assert trigger["payload"]["source"] == f"{namespace}/web"
    assert "payload" not in resolve

    wait_until(
        lambda: resources.incident("paged")["status"]["escalation"].get("resolvedNoticesDone"),
        timeout=30,
        what="the escalation timer to finish with the resolved incident",
    )
    status = resources.incident("paged")["status"]
    # Written with resolvedNoticesDone, in the same write: nothing more is owed, and the
    # operator's watch lets the Incident go (handlers/watch_selection.py).
    assert status.get("settled") is True
    levels = {n["level"]: n for n in status["escalation"]["levels"]}
    assert levels[1]["receiver"] == "pagerduty-oncall" and levels[1]["resolvedNotified"] is True
    # Level 2's receiver is down: retried with backoff (5 s, 10 s, ...), never delivered, and
    # not told of a resolution it never heard the start of.
    assert levels[2]["delivered"] is False and levels[2]["lastError"]
    assert not levels[2].get("resolvedNotified")
    assert ROUTING_KEY not in str(status) and url not in str(status)
