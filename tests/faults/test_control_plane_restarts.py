"""The API server or etcd killed (SIGKILL) mid-incident and started again on the same port and
data (issue 13, points 1 and 2): the operator's watches and timers recover by themselves, the
Incident completes, no action is applied twice; and a burst of alerts sent through the bridge
while the control plane is gone gets 5xx, which Alertmanager retries until each Incident is
created, once."""

from __future__ import annotations

import secrets
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from localkube.cluster import LocalCluster
from localkube.monitoring import Alertmanager
from localkube.processes import free_port, wait_until
from tests.support.bridge import list_incidents
from tests.support.faults import OperatorProcess, TargetWrites, revision
from tests.support.kube import deployment_manifest, wait_rollout
from tests.support.objects import Resources, incident_manifest, policy_manifest
from tests.support.responder import Responder, image

pytestmark = pytest.mark.cluster

GOOD, BAD = "registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10-bad"
HEALTHY, FAILING = (0.0, 0.2), (0.3, 0.2)
# Long enough for the operator's watches to fail and back off, short for the tier's budget.
OUTAGE_SECONDS = 6.0
COMPONENTS = ["kube-apiserver", "etcd"]


def _deploy_bad(apps: client.AppsV1Api, namespace: str, name: str) -> None:
    apps.create_namespaced_deployment(namespace, deployment_manifest(name, image=GOOD))
    wait_rollout(apps, namespace, name)
    apps.patch_namespaced_deployment(
        name,
        namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": BAD}]}}}},
    )
    wait_rollout(apps, namespace, name)


def _health(dep: dict[str, Any]) -> tuple[float, float]:
    return FAILING if image(dep) == BAD else HEALTHY


def _outage(plane: LocalCluster, component: str) -> None:
    plane.kill_component(component)
    time.sleep(OUTAGE_SECONDS)  # the fault itself: the component stays dead this long
    plane.start_component(component)


@pytest.mark.parametrize("component", COMPONENTS)
def test_a_restart_mid_incident_is_survived_and_nothing_is_applied_twice(
    *,
    component: str,
    fault_plane: LocalCluster,
    fault_api: client.ApiClient,
    fault_apps: client.AppsV1Api,
    fault_namespace: str,
    fault_operator: OperatorProcess,
    signals: Any,
) -> None:
    namespace, apps = fault_namespace, fault_apps
    resources = Resources(fault_api, namespace)
    for name in ("during", "after"):
        _deploy_bad(apps, namespace, name)
        resources.create(
            policy_manifest(
                name,
                app=name,
                rules=[{"name": "any", "actions": [{"rollback": {}}]}],
                window="4s",
            )
        )
    revisions = {name: revision(apps, namespace, name) for name in ("during", "after")}
    with (
        TargetWrites(apps, namespace, "during") as during_writes,
        TargetWrites(apps, namespace, "after") as after_writes,
        Responder(fault_api, signals, namespace=namespace, name="during", health=_health),
        Responder(fault_api, signals, namespace=namespace, name="after", health=_health),
    ):
        fault_operator.start()
        resources.create(incident_manifest("during", target="during"))
        resources.wait_phase("during", "Verifying", "Resolved", "Escalated", "Failed")
        _outage(fault_plane, component)
        # Created after the restart: only a watch that recovered sees it.
        resources.create(incident_manifest("after", target="after"))
        done = {
            name: resources.wait_phase(name, "Resolved", "Escalated", "Failed", timeout=120)
            for name in ("during", "after")
        }
        assert fault_operator.process is not None
        assert fault_operator.process.poll() is None, "the operator died:\n" + fault_operator.tail()
    for name, writes in (("during", during_writes), ("after", after_writes)):
        status = done[name]["status"]
        assert status["phase"] == "Resolved", (name, status.get("message"))
        assert revision(apps, namespace, name) == revisions[name] + 1
        assert len(writes.templates()) == 2, f"{name}: the template changed once, BAD -> GOOD"
        [action] = status["actions"]
        assert action["state"] == "Applied"


def _metric(url: str, name: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and 'integration="webhook"' in line
    )


@pytest.mark.prometheus
@pytest.mark.parametrize("component", COMPONENTS)
def test_a_burst_through_the_bridge_while_it_is_down_is_retried_into_one_incident_each(
    *,
    component: str,
    fault_plane: LocalCluster,
    fault_api: client.ApiClient,
    fault_namespace: str,
    fault_operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    namespace, groups = fault_namespace, 10
    port, token = free_port(), secrets.token_urlsafe(16)
    fault_operator.env.update({"MITIGATOR_BRIDGE_PORT": str(port), "MITIGATOR_BRIDGE_TOKEN": token})
    alertmanager = Alertmanager(
        workdir=tmp_path / "alertmanager",
        webhook_url=f"http://127.0.0.1:{port}/api/v1/alerts",
        bearer_token=token,
        group_wait="1s",
        group_interval="2s",
        # Resend unchanged groups often, as a long outage would see them resent.
        repeat_interval="3s",
    )
    alertmanager.start()
    try:
        fault_operator.start()
        wait_until(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2),
            timeout=60,
            what="the operator's bridge to listen",
        )
        fault_plane.kill_component(component)
        down_since = time.monotonic()
        alerts = [
            {
                "labels": {
                    "alertname": "HighErrorRate",
                    "severity": "critical",
                    "namespace": namespace,
                    "deployment": f"web-{index}",
                },
                "annotations": {"summary": "5xx rate above 5%"},
            }
            for index in range(groups)
        ]
        alertmanager.post_alerts(alerts)
        wait_until(
            lambda: _metric(alertmanager.url, "alertmanager_notifications_failed_total") > 0,
            timeout=30,
            what="Alertmanager to see the bridge fail",
        )
        failed = _metric(alertmanager.url, "alertmanager_notifications_failed_total")
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_since)))
        fault_plane.start_component(component)
        back = time.monotonic()
        wait_until(
            lambda: len(list_incidents(fault_api, namespace)) >= groups,
            timeout=90,
            what=f"{groups} incidents from the retried notifications",
        )
        created_after = time.monotonic() - back
        # Alertmanager keeps resending every group each group_interval: let it resend each
        # at least once more, and count again.
        sent = _metric(alertmanager.url, "alertmanager_notifications_total")
        wait_until(
            lambda: _metric(alertmanager.url, "alertmanager_notifications_total") >= sent + groups,
            timeout=60,
            what="Alertmanager to resend every group",
        )
        incidents = list_incidents(fault_api, namespace)
    finally:
        alertmanager.stop()
    targets = sorted(item["spec"]["target"]["name"] for item in incidents)
    print(
        f"{component} down: Alertmanager notifications failed {failed:.0f} times; all "
        f"{groups} incidents {created_after:.1f}s after it was back"
    )
    assert targets == sorted(f"web-{index}" for index in range(groups)), targets
    assert failed > 0
