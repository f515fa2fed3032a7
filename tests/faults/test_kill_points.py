"""The operator killed at each step of an Incident's life in turn (issue 13, point 3).

One namespace, three Incidents that between them pass every step: a rollback, a scale-up
reverted once healthy, and an escalation to a webhook. The operator is started armed with one
failpoint at a time, in the order the steps come, and dies there (exit 137, no cleanup, as a
SIGKILL) on whichever Incident reaches it first; then it is started clean. Afterwards every
Incident is in the phase an uninterrupted run reaches, the target saw each action exactly once
(its generation and revision count the writes), and the escalation was delivered at least once
and recorded once."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from mitigator import failpoints
from tests.support.faults import OperatorProcess, TargetWrites, revision
from tests.support.kube import BAD, GOOD, deploy_good_then_bad, deployment_manifest, wait_rollout
from tests.support.objects import Resources, incident_manifest, policy_manifest, timeline_events
from tests.support.responder import Responder, image

pytestmark = pytest.mark.cluster

HEALTHY, FAILING = (0.0, 0.2), (0.3, 0.2)

# In the order a run passes them; each one kills the operator once.
MITIGATION_POINTS = [
    failpoints.AFTER_CLASSIFICATION,
    failpoints.AFTER_PLANNING,
    failpoints.AFTER_ACTION_APPLIED,
    failpoints.DURING_ROLLOUT_WAIT,
    failpoints.DURING_VERIFICATION,
    failpoints.DURING_REVERT,
]


def _deploy(apps: client.AppsV1Api, namespace: str, name: str, *, bad: bool) -> None:
    if bad:
        deploy_good_then_bad(apps, namespace, name)
        return
    apps.create_namespaced_deployment(namespace, deployment_manifest(name, image=GOOD))
    wait_rollout(apps, namespace, name)


def test_killed_at_every_step_each_action_once_and_each_escalation_recorded_once(
    *,
    fault_api: client.ApiClient,
    fault_apps: client.AppsV1Api,
    fault_namespace: str,
    fault_operator: OperatorProcess,
    signals: Any,
    webhook_receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    namespace, apps = fault_namespace, fault_apps
    resources = Resources(fault_api, namespace)
    url, received = webhook_receiver
    _deploy(apps, namespace, "roll", bad=True)
    _deploy(apps, namespace, "surge", bad=False)
    _deploy(apps, namespace, "page", bad=False)
    resources.create(
        policy_manifest("roll", app="roll", rules=[{"name": "any", "actions": [{"rollback": {}}]}])
    )
    resources.create(
        policy_manifest(
            "surge",
            app="surge",
            rules=[{"name": "any", "actions": [{"scale": {"increment": 1}}]}],
            revert_on_resolve=["scale"],
        )
    )
    resources.create(
        policy_manifest(
            "page",
            app="page",
            rules=[{"name": "p0", "when": {"severities": ["P0"]}, "actions": [{"restart": {}}]}],
            escalation=[{"after": "0s", "level": 1, "name": "on-call", "webhook": url}],
        )
    )
    revision_before = revision(apps, namespace, "roll")

    def roll_health(dep: dict[str, Any]) -> tuple[float, float]:
        return FAILING if image(dep) == BAD else HEALTHY

    def surge_health(dep: dict[str, Any]) -> tuple[float, float]:
        return FAILING if dep["spec"]["replicas"] < 3 else HEALTHY

    killed_after: dict[str, float] = {}
    with (
        TargetWrites(apps, namespace, "roll") as roll_writes,
        TargetWrites(apps, namespace, "surge") as surge_writes,
        TargetWrites(apps, namespace, "page") as page_writes,
        Responder(fault_api, signals, namespace=namespace, name="roll", health=roll_health),
        Responder(fault_api, signals, namespace=namespace, name="surge", health=surge_health),
    ):
        resources.create(incident_manifest("roll", target="roll"))
        resources.create(incident_manifest("surge", target="surge"))
        for point in MITIGATION_POINTS:
            killed_after[point] = fault_operator.wait_killed_at(point)
        # The escalation comes last so that no earlier run delivers it unarmed.
        resources.create(incident_manifest("page", target="page", severity="P2"))
        point = failpoints.DURING_ESCALATION_DELIVERY
        killed_after[point] = fault_operator.wait_killed_at(point)
        assert received, "the webhook was called before the operator died"
        fault_operator.start()
        done = {
            name: resources.wait_phase(name, "Resolved", "Escalated", "Failed", timeout=90)
            for name in ("roll", "surge", "page")
        }
        levels = _wait_recorded_level(resources, "page")
    print(f"killed at each point after (s): {killed_after}; webhook calls: {len(received)}")

    # The phases an uninterrupted run reaches (tests/integration/test_operator.py).
    assert done["roll"]["status"]["phase"] == "Resolved", done["roll"]["status"].get("message")
    assert done["surge"]["status"]["phase"] == "Resolved", done["surge"]["status"].get("message")
    assert done["page"]["status"]["phase"] == "Escalated", done["page"]["status"].get("message")

    # Exactly once: one rollback (one new revision, one spec write), one scale and one revert.
    assert revision(apps, namespace, "roll") == revision_before + 1
    assert image(_read(apps, namespace, "roll")) == GOOD
    assert len(roll_writes.templates()) == 2, "the template changed once: BAD -> GOOD"
    assert surge_writes.replicas() == [2, 3, 2], "scaled once, reverted once"
    assert len(page_writes.templates()) == 1 and page_writes.replicas() == [2]
    for name in ("roll", "surge"):
        status = done[name]["status"]
        [action] = status["actions"]
        assert action["state"] == "Applied"
        assert timeline_events(done[name]).count("ActionApplied") == 1, status["timeline"]
    [revert] = done["surge"]["status"]["reverts"]
    assert revert["state"] == "Reverted"
    assert timeline_events(done["surge"]).count("Reverted") == 1

    # At least once delivered, recorded once.
    assert len(received) >= 1
    assert all(r["payload"]["level"] == 1 for r in received)
    assert [(n["level"], n["delivered"]) for n in levels] == [(1, True)]
    assert fault_operator.tracebacks() == []


def _read(apps: client.AppsV1Api, namespace: str, name: str) -> dict[str, Any]:
    dep = apps.read_namespaced_deployment(name, namespace)
    result: dict[str, Any] = apps.api_client.sanitize_for_serialization(dep)
    return result


def _wait_recorded_level(resources: Resources, name: str) -> list[dict[str, Any]]:
    from localkube.processes import wait_until

    def recorded() -> list[dict[str, Any]]:
        status = resources.incident(name).get("status") or {}
        return list((status.get("escalation") or {}).get("levels") or [])

    wait_until(recorded, timeout=30, what=f"{name}'s escalation to be recorded")
    return recorded()
