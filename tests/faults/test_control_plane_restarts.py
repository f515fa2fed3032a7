"""The API server or etcd killed (SIGKILL) mid-incident and started again on the same port and
data (issue 13, points 1 and 2). One outage per component, and in it:

- an Incident in the middle of verification: the operator's watches and timers recover by
  themselves, the Incident completes, its rollback was written once;
- an Incident created only after the restart is handled (the watch came back);
- a burst of alerts into the bridge, through a real Alertmanager: the bridge answers 5xx while
  the control plane is gone, Alertmanager retries, and each alert group becomes one Incident,
  which stays one through further resends."""

from __future__ import annotations

import secrets
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from localkube.cluster import LocalCluster
from localkube.monitoring import Alertmanager
from localkube.processes import free_port, wait_until
from tests.support.bridge import list_incidents
from tests.support.faults import OperatorProcess, TargetWrites, revision
from tests.support.kube import BAD, deploy_good_then_bad
from tests.support.objects import Resources, incident_manifest, policy_manifest
from tests.support.responder import Responder, image

pytestmark = [pytest.mark.cluster, pytest.mark.prometheus]

HEALTHY, FAILING = (0.0, 0.2), (0.3, 0.2)
# Long enough for the operator's watches to fail and back off, short for the tier's budget.
OUTAGE_SECONDS = 6.0
GROUPS = 10
COMPONENTS = ["kube-apiserver", "etcd"]


def _health(dep: dict[str, Any]) -> tuple[float, float]:
    return FAILING if image(dep) == BAD else HEALTHY


def _metric(url: str, name: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and 'integration="webhook"' in line
    )


def _burst(namespace: str) -> list[dict[str, Any]]:
    """One alert group per Deployment that does not exist: the Incidents only wait for it."""
    return [
        {
            "labels": {
                "alertname": "HighErrorRate",
                "severity": "critical",
                "namespace": namespace,
                "deployment": f"burst-{index}",
            },
            "annotations": {"summary": "5xx rate above 5%"},
        }
        for index in range(GROUPS)
    ]


@pytest.mark.parametrize("component", COMPONENTS)
def test_a_control_plane_restart_mid_incident_and_mid_burst_is_survived_without_doubles(
    *,
    component: str,
    fault_plane: LocalCluster,
    fault_api: client.ApiClient,
    fault_apps: client.AppsV1Api,
    fault_namespace: str,
    fault_operator: OperatorProcess,
    signals: Any,
    tmp_path: Path,
) -> None:
    namespace, apps = fault_namespace, fault_apps
    resources = Resources(fault_api, namespace)
    for name in ("during", "after"):
        deploy_good_then_bad(apps, namespace, name)
        resources.create(
            policy_manifest(
                name,
                app=name,
                rules=[{"name": "any", "actions": [{"rollback": {}}]}],
                window="4s",
                # The window opens once the rollback has rolled out and the new pods' series
                # answer: after an outage on a loaded machine that took up to 40 s (the
                # controller-manager and Prometheus catching up), past the default 20 s.
                timeout="90s",
            )
        )
    revisions = {name: revision(apps, namespace, name) for name in ("during", "after")}
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
        with (
            TargetWrites(apps, namespace, "during") as during_writes,
            TargetWrites(apps, namespace, "after") as after_writes,
            Responder(fault_api, signals, namespace=namespace, name="during", health=_health),
            Responder(fault_api, signals, namespace=namespace, name="after", health=_health),
        ):
            fault_operator.start()
            resources.create(incident_manifest("during", target="during"))
            resources.wait_phase("during", "Verifying", "Resolved", "Escalated", "Failed")
            fault_plane.kill_component(component)
            down_since = time.monotonic()
            alertmanager.post_alerts(_burst(namespace))
            wait_until(
                lambda: _metric(alertmanager.url, "alertmanager_notifications_failed_total") > 0,
                timeout=30,
                what="Alertmanager to see the bridge fail",
            )
            failed = _metric(alertmanager.url, "alertmanager_notifications_failed_total")
            # The fault itself: the component stays dead this long.
            time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_since)))
            fault_plane.start_component(component)
            back = time.monotonic()
            # Created after the restart: only a watch that recovered sees it.
            resources.create(incident_manifest("after", target="after"))
            done = {
                name: resources.wait_phase(name, "Resolved", "Escalated", "Failed", timeout=150)
                for name in ("during", "after")
            }
            recovered_in = time.monotonic() - back

            def burst_incidents() -> list[str]:
                return sorted(
                    item["spec"]["target"]["name"]
                    for item in list_incidents(fault_api, namespace)
                    if item["spec"]["target"]["name"].startswith("burst-")
                )

            wait_until(
                lambda: len(burst_incidents()) >= GROUPS,
                timeout=90,
                what=f"{GROUPS} incidents from the retried notifications",
            )
            # Alertmanager resends every group each repeat_interval: let it resend each at
            # least once more, and count again.
            sent = _metric(alertmanager.url, "alertmanager_notifications_total")
            wait_until(
                lambda: (
                    _metric(alertmanager.url, "alertmanager_notifications_total") >= sent + GROUPS
                ),
                timeout=60,
                what="Alertmanager to resend every group",
            )
            burst = burst_incidents()
            assert fault_operator.process is not None
            alive = fault_operator.process.poll() is None
            assert alive, "the operator died:\n" + fault_operator.tail()
    finally:
        alertmanager.stop()
    print(
        f"{component} down {OUTAGE_SECONDS:.0f}s: Alertmanager notifications failed "
        f"{failed:.0f} times; both Incidents resolved {recovered_in:.1f}s after it was back"
    )
    assert failed > 0
    assert burst == sorted(f"burst-{index}" for index in range(GROUPS)), burst
    for name, writes in (("during", during_writes), ("after", after_writes)):
        status = done[name]["status"]
        if name == "during" and status["phase"] == "Escalated":
            # The cluster may not finish a rollout that was in flight when etcd died (seen
            # in CI: 3 replicas, 2 updated, 1 unavailable 180 s on; the controller-manager
            # waits out what it expected of the lost requests). Escalating is then right, if
            # the rollout really was unfinished when the operator said so.
            _assert_unfinished_when_escalated(apps, namespace, name, status)
        else:
            assert status["phase"] == "Resolved", (name, status.get("message"))
        assert revision(apps, namespace, name) == revisions[name] + 1
        assert len(writes.templates()) == 2, f"{name}: the template changed once, BAD -> GOOD"
        [action] = status["actions"]
        assert action["state"] == "Applied"


def _assert_unfinished_when_escalated(
    apps: client.AppsV1Api, namespace: str, name: str, status: dict[str, Any]
) -> None:
    """The operator escalated because the rollout did not complete in time: then the API
    server's Deployment must not have completed it before that moment (its Progressing
    condition turns NewReplicaSetAvailable when it does, and says when)."""
    escalated_at = max(
        datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))
        for entry in status["timeline"]
        if entry["event"] == "Escalated"
    )
    assert "did not complete" in " ".join(
        entry.get("message", "") for entry in status["timeline"]
    ), status["timeline"]
    deployment = apps.read_namespaced_deployment_status(name, namespace)
    # (The condition of the rollout before the rollback counts only if the controller never
    # saw the rollback: then the rollout is unfinished, as its observedGeneration says.)
    seen = deployment.status.observed_generation == deployment.metadata.generation
    completed = [
        c.last_update_time
        for c in deployment.status.conditions or []
        if seen and c.type == "Progressing" and c.reason == "NewReplicaSetAvailable"
    ]
    assert not completed or completed[0] > escalated_at, (escalated_at, deployment.status)
