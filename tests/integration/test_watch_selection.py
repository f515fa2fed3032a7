"""Failed and Suppressed Incidents stay out of the operator's watch (handlers/watch_selection.py,
the CRD's selectable field `.status.phase`): present at a start they are not loaded, an
Incident that fails while the operator runs leaves its watch without being written to or
deleted, and open and Resolved Incidents are loaded as before.

The operator runs as its own process (its shipped RBAC, a namespace of its own), so that its
`/metrics` (`mitigator_incidents`: the Incidents it watches, by phase) counts this test's
Incidents only."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from localkube.monitoring import Prometheus
from localkube.processes import free_port, wait_until
from tests.support.kube import GOOD, deployment_manifest, wait_rollout
from tests.support.objects import GROUP, VERSION, Resources, incident_manifest, policy_manifest
from tests.support.responder import Responder
from tests.support.world import start_operator

pytestmark = pytest.mark.cluster

NOW = "2026-01-01T00:00:00Z"


def _watched(port: int) -> dict[str, float]:
    """`mitigator_incidents` by phase, from the operator's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("mitigator_incidents{"):
            labels, value = line.rsplit(" ", 1)
            phase = labels.split('phase="', 1)[1].split('"', 1)[0]
            counts[phase] = counts.get(phase, 0.0) + float(value)
    return counts


def _settled(resources: Resources, name: str, phase: str) -> dict[str, Any]:
    """An Incident made as if an earlier operator had settled it in `phase`."""
    resources.create(incident_manifest(name, target="web"))
    status: dict[str, Any] = {"phase": phase, "detectedAt": NOW}
    if phase == "Resolved":
        status["resolvedAt"] = NOW
    patched: dict[str, Any] = resources.custom.patch_namespaced_custom_object_status(  # type: ignore[assignment]
        GROUP, VERSION, resources.namespace, "incidents", name, {"status": status}
    )
    return patched


def test_failed_and_suppressed_incidents_stay_out_of_the_watch(
    *,
    operator_kubeconfig: Path,
    prometheus: Prometheus,
    signals: Any,
    api_client: client.ApiClient,
    own_namespace: str,
    tmp_path: Path,
) -> None:
    namespace = own_namespace
    apps = client.AppsV1Api(api_client)
    resources = Resources(api_client, namespace)
    apps.create_namespaced_deployment(namespace, deployment_manifest("web", image=GOOD))
    wait_rollout(apps, namespace, "web")
    resources.create(
        policy_manifest(
            "restarts",
            app="web",
            rules=[{"name": "any", "actions": [{"restart": {}}]}],
            # An Incident whose Deployment does not exist fails after this.
            guardrails={"targetWait": "1s"},
        )
    )
    before = {
        phase: _settled(resources, f"old-{phase.lower()}", phase)
        for phase in ("Failed", "Suppressed", "Resolved")
    }
    port = free_port()
    operator = start_operator(
        operator_kubeconfig,
        prometheus,
        namespace,
        tmp_path / "operator.log",
        MITIGATOR_METRICS_PORT=str(port),
        MITIGATOR_METRICS_HOST="127.0.0.1",
    )
    try:
        with Responder(
            api_client, signals, namespace=namespace, name="web", health=lambda _: (0.0, 0.2)
        ):
            # Open at the start: loaded and mitigated.
            resources.create(incident_manifest("open", target="web"))
            opened = resources.wait_phase("open", "Resolved", "Escalated", "Failed", timeout=90)
            assert opened["status"]["phase"] == "Resolved", opened["status"].get("message")
        # Fails while the operator runs: it leaves the watch (the gauge forgets it).
        resources.create(incident_manifest("lost", target="nowhere"))
        lost = resources.wait_phase("lost", "Failed", "Resolved", "Escalated")
        assert lost["status"]["phase"] == "Failed", lost["status"].get("message")
        wait_until(
            lambda: _watched(port) == {"Resolved": 2.0},
            timeout=30,
            what="the operator to watch the two Resolved Incidents and no other",
        )
    finally:
        operator.terminate()
        operator.wait(timeout=30)
    # Neither deleted nor written to: the settled ones are as they were before the start.
    for phase in ("Failed", "Suppressed"):
        incident = resources.incident(f"old-{phase.lower()}")
        assert (
            incident["metadata"]["resourceVersion"]
            == (before[phase]["metadata"]["resourceVersion"])
        )
    assert resources.incident("lost")["status"]["phase"] == "Failed"
