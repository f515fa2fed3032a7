"""An operator killed right after it changed the target, before it could write the
Incident's status, is restarted and does not apply the action a second time.

The operator here runs as a separate process with its own ServiceAccount and the RBAC of
config/overlays/cluster-wide, so this also proves those permissions are enough."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from localkube.monitoring import Prometheus
from localkube.processes import wait_until
from tests.support.kube import BAD, GOOD, deploy_good_then_bad
from tests.support.objects import Resources, incident_manifest, policy_manifest, timeline_events
from tests.support.responder import Responder, image
from tests.support.world import start_operator

pytestmark = pytest.mark.cluster

REVISION = "deployment.kubernetes.io/revision"


def _observed(apps: client.AppsV1Api, namespace: str, name: str) -> client.V1Deployment:
    """The Deployment once the deployment controller has synced its current spec: only then
    is its revision annotation current (the controller writes it after the spec changed, on
    its own time; a read right after a patch may still carry the previous revision)."""
    deployments: list[client.V1Deployment] = []

    def synced() -> bool:
        dep = apps.read_namespaced_deployment(name, namespace)
        deployments.append(dep)
        observed = dep.status.observed_generation if dep.status else None
        return observed is not None and observed >= dep.metadata.generation

    wait_until(synced, timeout=30, what=f"the deployment controller to sync {namespace}/{name}")
    return deployments[-1]


def test_action_is_applied_once_across_an_operator_crash(
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
    deploy_good_then_bad(apps, namespace)
    resources.create(
        policy_manifest(
            "runbooks", app="web", rules=[{"name": "any", "actions": [{"rollback": {}}]}]
        )
    )
    log = tmp_path / "operator.log"

    def health(dep: dict[str, Any]) -> tuple[float, float]:
        return (0.3, 0.2) if image(dep) == BAD else (0.0, 0.2)

    with Responder(api_client, signals, namespace=namespace, name="web", health=health):
        first = start_operator(
            operator_kubeconfig,
            prometheus,
            namespace,
            log,
            MITIGATOR_FAILPOINTS="after-action-applied",
        )
        resources.create(incident_manifest("crash", target="web"))
        try:
            assert first.wait(timeout=60) == 137, log.read_text()[-3000:]
        finally:
            first.kill()
        # The rollback happened; the Incident never heard of it. (Revision 1 was GOOD, 2 BAD;
        # the rollback makes revision 1's ReplicaSet the new one, as revision 3.)
        rolled_back = _observed(apps, namespace, "web")
        assert rolled_back.spec.template.spec.containers[0].image == GOOD
        revision = rolled_back.metadata.annotations[REVISION]
        assert revision == "3"
        status = resources.incident("crash").get("status") or {}
        assert not any(a.get("state") == "Applied" for a in status.get("actions") or [])

        second = start_operator(operator_kubeconfig, prometheus, namespace, log)
        try:
            incident = resources.wait_phase("crash", "Resolved", "Escalated", "Failed")
        finally:
            second.terminate()
            second.wait(timeout=30)
    status = incident["status"]
    assert status["phase"] == "Resolved", status.get("message")
    [action] = status["actions"]
    assert action["state"] == "Applied"
    assert "already applied" in action["message"]
    assert action["before"]["images"] == {"app": BAD}
    assert any(
        "recovered" in e["message"] for e in status["timeline"] if e["event"] == "ActionApplied"
    )
    assert "Resolved" in timeline_events(incident)
    # Not applied a second time: a second rollback would go back to BAD as revision 4. Read
    # once the controller has synced the last write (the operator's record annotations bump a
    # Deployment's generation too, so the generation itself proves nothing here).
    dep = _observed(apps, namespace, "web")
    assert dep.spec.template.spec.containers[0].image == GOOD
    assert dep.metadata.annotations[REVISION] == revision
    assert "forbidden" not in log.read_text().lower(), "the operator's RBAC lacks a permission"
