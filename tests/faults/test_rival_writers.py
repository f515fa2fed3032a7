"""Someone else writes the target while a mitigation runs (issue 13, point 5).

A person sets a new image between the operator's read of the target and its write (the
operator is held there by the test-only failpoint ``pause-before-action-write``): the write
is refused as a conflict and made again on the fresh state, keeping the person's image. A
person undoing the mitigation during verification (``kubectl rollout undo``) is detected and
escalated with that reason, not fought. (A GitOps tool re-applying the old spec is
tests/integration/test_gitops.py::test_a_tool_reapplying_the_old_spec_is_detected_not_fought.)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from localkube.processes import wait_until
from localkube.testing import ClusterAccess
from mitigator import failpoints
from tests.support.faults import OperatorProcess, TargetWrites
from tests.support.kube import BAD, GOOD, deploy_good_then_bad, deployment_manifest, wait_rollout
from tests.support.objects import Resources, incident_manifest, policy_manifest, timeline_events
from tests.support.responder import Responder, image
from tests.support.world import kubectl

pytestmark = pytest.mark.cluster

PERSONS = "registry.k8s.io/pause:3.10-hotfix"
HEALTHY, FAILING = (0.0, 0.2), (0.3, 0.2)


def _set_image(apps: client.AppsV1Api, namespace: str, name: str, new: str) -> None:
    apps.patch_namespaced_deployment(
        name,
        namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": new}]}}}},
    )


def test_a_person_writing_between_read_and_write_makes_a_conflict_retried_on_fresh_state(
    *,
    fault_api: client.ApiClient,
    fault_apps: client.AppsV1Api,
    fault_namespace: str,
    fault_operator: OperatorProcess,
    signals: Any,
    tmp_path: Path,
) -> None:
    namespace, apps = fault_namespace, fault_apps
    resources = Resources(fault_api, namespace)
    apps.create_namespaced_deployment(namespace, deployment_manifest("web", image=BAD))
    wait_rollout(apps, namespace, "web")
    resources.create(
        policy_manifest(
            "web",
            app="web",
            rules=[{"name": "any", "actions": [{"scale": {"increment": 1}}]}],
        )
    )
    gate = tmp_path / "gate"
    fault_operator.env.update(
        {
            "MITIGATOR_FAILPOINTS": failpoints.PAUSE_BEFORE_ACTION_WRITE,
            "MITIGATOR_FAILPOINT_GATE": str(gate),
        }
    )

    def health(dep: dict[str, Any]) -> tuple[float, float]:
        return FAILING if dep["spec"]["replicas"] < 3 else HEALTHY

    with (
        TargetWrites(apps, namespace, "web") as writes,
        Responder(fault_api, signals, namespace=namespace, name="web", health=health),
    ):
        fault_operator.start()
        resources.create(incident_manifest("web", target="web"))
        wait_until(
            Path(f"{gate}.reached").exists, timeout=60, what="the operator to read the target"
        )
        # The person, after the operator's read: a new image, and more replicas by hand.
        apps.patch_namespaced_deployment(
            "web",
            namespace,
            {
                "spec": {
                    "replicas": 5,
                    "template": {"spec": {"containers": [{"name": "app", "image": PERSONS}]}},
                }
            },
        )
        gate.touch()
        incident = resources.wait_phase("web", "Resolved", "Escalated", "Failed")
    status = incident["status"]
    assert status["phase"] == "Resolved", status.get("message")
    final = apps.read_namespaced_deployment("web", namespace)
    assert final.spec.template.spec.containers[0].image == PERSONS, "a blind overwrite"
    # A blind write of the decision made on the stale read would have set 3 replicas; made
    # again on the fresh state it adds its one replica to the person's five.
    assert writes.replicas() == [2, 5, 6], writes.replicas()
    assert (final.spec.replicas, status["actions"][0]["before"]) == (6, {"replicas": 5})
    assert timeline_events(incident).count("ActionApplied") == 1


def test_a_person_undoing_the_mitigation_is_detected_and_escalated_not_fought(
    *,
    fault_access: ClusterAccess,
    fault_api: client.ApiClient,
    fault_apps: client.AppsV1Api,
    fault_namespace: str,
    fault_operator: OperatorProcess,
    signals: Any,
) -> None:
    namespace, apps = fault_namespace, fault_apps
    resources = Resources(fault_api, namespace)
    deploy_good_then_bad(apps, namespace)
    resources.create(
        policy_manifest(
            "web",
            app="web",
            rules=[{"name": "any", "actions": [{"rollback": {}}]}],
            window="30s",
            timeout="60s",
        )
    )

    def health(dep: dict[str, Any]) -> tuple[float, float]:
        return FAILING if image(dep) == BAD else HEALTHY

    with (
        TargetWrites(apps, namespace, "web") as writes,
        Responder(fault_api, signals, namespace=namespace, name="web", health=health),
    ):
        fault_operator.start()
        resources.create(incident_manifest("web", target="web"))
        resources.wait_phase("web", "Verifying", "Resolved", "Escalated", "Failed")
        kubectl(fault_access, "rollout", "undo", "deployment/web", "-n", namespace)
        incident = resources.wait_phase("web", "Resolved", "Escalated", "Failed", timeout=30)
        # A loop would show within a few ticks (0.5 s each) of the escalation.
        time.sleep(3)
    status = incident["status"]
    assert status["phase"] == "Escalated", status.get("message")
    assert "undone behind the operator's back" in status["message"], status["message"]
    images = [image(v) for v in writes.versions]
    collapsed = [i for n, i in enumerate(images) if n == 0 or images[n - 1] != i]
    assert collapsed == [BAD, GOOD, BAD], collapsed
