"""The guide's runbooks, each from a metric change to a resolved or escalated Incident, with
nothing but real parts: the simulated service's metrics, Prometheus evaluating the shipped
alert rules, Alertmanager, the bridge, the operator, the API server.

Each test records the time from the alert's Incident to the first action and to resolution;
`make bench` collects those figures into docs/scenarios.md (they are never asserted)."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from typing import Any

import pytest

from localkube.demo import BAD_IMAGE, GOOD_IMAGE
from localkube.processes import wait_until
from tests.support.objects import timeline_events
from tests.support.service import Service

pytestmark = [pytest.mark.prometheus, pytest.mark.cluster]
TERMINAL = ("Resolved", "Escalated", "Failed")


def _stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def record(scenario: str, incident: dict[str, Any]) -> None:
    """Append the scenario's timings to $MITIGATOR_FIGURES_FILE (set by `make bench`)."""
    path = os.environ.get("MITIGATOR_FIGURES_FILE")
    status = incident["status"]
    detected = _stamp(status["detectedAt"])
    applied = [a for a in status.get("actions") or [] if a.get("state") == "Applied"]
    figures = {
        "scenario": scenario,
        "phase": status["phase"],
        "alert_to_first_action_s": (
            round((_stamp(applied[0]["finishedAt"]) - detected).total_seconds(), 1)
            if applied
            else None
        ),
        "alert_to_resolution_s": (
            round((_stamp(status["resolvedAt"]) - detected).total_seconds(), 1)
            if status.get("resolvedAt")
            else None
        ),
    }
    print(f"figures: {figures}")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(figures) + "\n")


def bridged_incident(service: Service, alertname: str, *, timeout: float = 90) -> str:
    """The Incident the bridge created for ``alertname``, or attached it to, once it exists."""
    found: list[str] = []

    def exists() -> bool:
        for item in service.incidents():
            source = item["spec"].get("source") or {}
            # Opened for it, or attached to the target's open Incident (one per target).
            names = {source.get("alertname")} | {
                (a.get("labels") or {}).get("alertname") for a in source.get("alerts") or []
            }
            if source.get("type") == "alertmanager" and alertname in names:
                found.append(item["metadata"]["name"])
                return True
        return False

    wait_until(exists, timeout=timeout, what=f"an Incident from alert {alertname}")
    return found[0]


def settle(service: Service, name: str, *, timeout: float = 150) -> dict[str, Any]:
    return service.resources.wait_phase(name, *TERMINAL, timeout=timeout)


def test_bad_deploy_fires_high_error_rate_and_is_rolled_back(luminamind: Service) -> None:
    luminamind.ship(BAD_IMAGE)
    name = bridged_incident(luminamind, "HighErrorRate")
    incident = settle(luminamind, name)
    status = incident["status"]
    assert status["phase"] == "Resolved", (status.get("message"), timeline_events(incident))
    assert status["severity"] == "P1"
    assert status["rule"] == "bad-rollout"
    assert status["actions"][0]["type"] == "rollback" and status["actions"][0]["state"] == "Applied"
    assert status["actions"][0]["before"]["images"] == {"app": BAD_IMAGE}
    assert luminamind.deployment().spec.template.spec.containers[0].image == GOOD_IMAGE
    assert luminamind.healthy()
    assert not luminamind.prometheus.query(
        f'ALERTS{{alertname="HighErrorRate",alertstate="firing",namespace="{luminamind.namespace}"}}'
    )
    record("bad deploy → rollback", incident)


def test_traffic_surge_scales_up_within_the_cap_and_back_after_recovery(
    luminamind: Service,
) -> None:
    luminamind.annotate(traffic="5")
    name = bridged_incident(luminamind, "HighLatency")
    incident = settle(luminamind, name)
    status = incident["status"]
    assert status["phase"] == "Resolved", (status.get("message"), timeline_events(incident))
    scale = status["actions"][0]
    assert scale["type"] == "scale" and scale["before"] == {"replicas": 3}
    assert scale["after"]["replicas"] == 5 and scale["after"]["replicas"] <= 10
    assert [r["state"] for r in status["reverts"]] == ["Reverted"]
    assert luminamind.deployment().spec.replicas == 3, "scaled back after verification"
    record("traffic surge → scale", incident)


def test_memory_leak_is_cleared_by_a_restart(luminamind: Service) -> None:
    luminamind.annotate(leak="true")
    name = bridged_incident(luminamind, "HighMemoryUsage")
    incident = settle(luminamind, name)
    luminamind.annotate(leak=None)
    status = incident["status"]
    assert status["phase"] == "Resolved", (status.get("message"), timeline_events(incident))
    assert status["actions"][0]["type"] == "restart" and status["actions"][0]["state"] == "Applied"
    annotations = luminamind.deployment().spec.template.metadata.annotations
    assert (
        annotations["kubectl.kubernetes.io/restartedAt"]
        == status["actions"][0]["after"]["restartedAt"]
    )
    record("memory leak → restart", incident)


def test_failing_web_search_is_disabled_then_restored(luminamind: Service) -> None:
    luminamind.annotate(web_search="down")
    name = bridged_incident(luminamind, "WebSearchErrors")
    incident = settle(luminamind, name)
    luminamind.annotate(web_search=None)
    status = incident["status"]
    assert status["phase"] == "Resolved", (status.get("message"), timeline_events(incident))
    assert status["actions"][0]["type"] == "setEnv"
    assert status["actions"][0]["after"]["env"] == {"DISABLE_WEB_SEARCH": "true"}
    assert [r["state"] for r in status["reverts"]] == ["Reverted"]
    env = luminamind.deployment().spec.template.spec.containers[0].env or []
    assert all(e.name != "DISABLE_WEB_SEARCH" for e in env), "env restored as the policy asks"
    record("web search failing → setEnv", incident)


def test_outage_rollback_cannot_help_so_maintenance_then_escalation(luminamind: Service) -> None:
    luminamind.annotate(outage="true")
    name = bridged_incident(luminamind, "ServiceDown")
    waiting = luminamind.resources.wait_phase(name, "AwaitingApproval", *TERMINAL, timeout=90)
    status = waiting["status"]
    assert status["phase"] == "AwaitingApproval", status.get("message")
    assert status["actions"][0]["state"] == "Skipped"  # no previous revision to roll back to
    assert "maintenance" in status["message"]
    luminamind.resources.patch_incident(name, {"approved": True})  # the Incident Commander's go
    incident = settle(luminamind, name)
    status = incident["status"]
    assert status["phase"] == "Escalated", (status.get("message"), timeline_events(incident))
    core = luminamind.core()
    assert core.read_namespaced_service("luminamind", luminamind.namespace).spec.selector == {
        "app": "luminamind-maintenance"
    }
    assert luminamind.deployment().spec.replicas == 0
    assert luminamind.probe() == (503, "120")
    record("outage → maintenance → escalated", incident)

    luminamind.annotate(outage=None)
    luminamind.resources.patch_incident(name, {"resolve": True})  # maintenance off, by hand
    resolved = luminamind.resources.wait_phase(name, "Resolved", timeout=60)
    assert [r["state"] for r in resolved["status"]["reverts"]] == ["Reverted"]
    assert core.read_namespaced_service("luminamind", luminamind.namespace).spec.selector == {
        "app": "luminamind"
    }
    assert luminamind.deployment().spec.replicas == 3


def test_a_flapping_alert_gives_at_most_one_mitigation(luminamind: Service) -> None:
    labels = {
        "alertname": "HighErrorRate",
        "namespace": luminamind.namespace,
        "deployment": "luminamind",
        "severity": "critical",
    }
    luminamind.ship(BAD_IMAGE)
    for flap in range(10):
        now = time.time()
        firing = {"labels": labels, "startsAt": _iso(now - 1)}
        resolved = {"labels": labels, "startsAt": _iso(now - 1), "endsAt": _iso(now)}
        luminamind.alertmanager.post_alerts([firing])
        time.sleep(2.5)
        luminamind.alertmanager.post_alerts([resolved])
        time.sleep(2.5)
        assert flap < 10
    names = {i["metadata"]["name"] for i in luminamind.incidents()}
    assert len(names) >= 1
    for name in names:
        luminamind.resources.wait_phase(name, *TERMINAL, timeout=120)
    applied = [
        a
        for i in luminamind.incidents()
        for a in (i["status"].get("actions") or [])
        if a.get("state") == "Applied"
    ]
    assert len(applied) <= 1, applied
    revision = luminamind.deployment().metadata.annotations["deployment.kubernetes.io/revision"]
    assert int(revision) <= 3, "at most one rollback on top of the bad deploy"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).astimezone().isoformat()
