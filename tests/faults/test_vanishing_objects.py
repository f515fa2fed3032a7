"""What an Incident depends on disappears mid-incident (issue 13, point 6): the target
Deployment is deleted → Failed with the reason; the policy is deleted or no longer covers the
target, or is edited into one the operator finds Invalid (valid for the API server, outside the
operator's ceilings) → no further action, and the reason recorded; the namespace is deleted →
the operator lets go, its finalizers do not hold the namespace."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.processes import wait_until
from tests.support.faults import OperatorProcess, TargetWrites
from tests.support.kube import BAD, deploy_good_then_bad
from tests.support.objects import GROUP, VERSION, Resources, incident_manifest, policy_manifest
from tests.support.responder import Responder, image

pytestmark = pytest.mark.cluster

HEALTHY, FAILING = (0.0, 0.2), (0.3, 0.2)
EVIDENCE_RULE = {"name": "p1", "when": {"severities": ["P0", "P1"]}, "actions": [{"rollback": {}}]}


def _health(dep: dict[str, Any]) -> tuple[float, float]:
    return FAILING if image(dep) == BAD else HEALTHY


@contextlib.contextmanager
def _awaiting_approval(
    resources: Resources,
    apps: client.AppsV1Api,
    *,
    names: Iterable[str],
    operator: OperatorProcess,
    signals: Any,
) -> Iterator[dict[str, TargetWrites]]:
    """One bad deploy per name, each covered by its own policy that reserves the rollback for
    a person; the operator started and each name's Incident waiting for that approval. Yields
    the writes seen on each target."""
    namespace = resources.namespace
    names = tuple(names)
    for name in names:
        deploy_good_then_bad(apps, namespace, name)
        resources.create(
            policy_manifest(
                name,
                app=name,
                rules=[EVIDENCE_RULE],
                guardrails={"requireApprovalFor": ["rollback"]},
            )
        )
    with contextlib.ExitStack() as stack:
        writes = {name: stack.enter_context(TargetWrites(apps, namespace, name)) for name in names}
        for name in names:
            stack.enter_context(
                Responder(
                    resources.custom.api_client,
                    signals,
                    namespace=namespace,
                    name=name,
                    health=_health,
                )
            )
        operator.start()
        for name in names:
            resources.create(incident_manifest(name, target=name))
        for name in names:
            resources.wait_phase(name, "AwaitingApproval", "Resolved", "Escalated", "Failed")
        yield writes


def test_a_target_deleted_mid_incident_fails_it_with_the_reason(
    *,
    fault_api: client.ApiClient,
    fault_apps: client.AppsV1Api,
    fault_namespace: str,
    fault_operator: OperatorProcess,
    signals: Any,
) -> None:
    namespace, apps = fault_namespace, fault_apps
    resources = Resources(fault_api, namespace)
    deploy_good_then_bad(apps, namespace, "gone")
    resources.create(
        policy_manifest("gone", app="gone", rules=[EVIDENCE_RULE], window="30s", timeout="60s")
    )
    with Responder(fault_api, signals, namespace=namespace, name="gone", health=_health):
        fault_operator.start()
        resources.create(incident_manifest("gone", target="gone"))
        resources.wait_phase("gone", "Verifying", "Resolved", "Escalated", "Failed")
        apps.delete_namespaced_deployment("gone", namespace)
        incident = resources.wait_phase("gone", "Resolved", "Escalated", "Failed", timeout=30)
    status = incident["status"]
    assert status["phase"] == "Failed", status.get("message")
    assert "gone" in status["message"] and "deleted" in status["message"], status["message"]


def test_a_policy_deleted_or_narrowed_mid_incident_stops_further_actions(
    *,
    fault_api: client.ApiClient,
    fault_apps: client.AppsV1Api,
    fault_namespace: str,
    fault_operator: OperatorProcess,
    signals: Any,
) -> None:
    """Each Incident waits for approval of its step when its policy goes away: approved
    afterwards, it must not act on a policy that no longer stands."""
    namespace, apps = fault_namespace, fault_apps
    resources = Resources(fault_api, namespace)
    custom = client.CustomObjectsApi(fault_api)
    names = ("deleted", "narrowed")
    with _awaiting_approval(
        resources, apps, names=names, operator=fault_operator, signals=signals
    ) as writes_of:
        custom.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, "mitigationpolicies", "deleted"
        )
        custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            "mitigationpolicies",
            "narrowed",
            {"spec": {"selector": {"matchLabels": {"app": "something-else"}}}},
        )
        # The operator has taken in both changes before the approvals: it wrote the narrowed
        # policy's status for its new generation, an event of the policies' watch that comes
        # after the deletion's. (Approved at once, a tick could still decide on the policies
        # as they were, when the Incidents' watch delivers before the policies' does.)
        _valid_for_its_generation(resources, "narrowed")
        for name in names:
            resources.patch_incident(name, {"approved": True})
        done = {
            name: resources.wait_phase(name, "Resolved", "Escalated", "Failed", timeout=30)
            for name in names
        }
    for name, writes in writes_of.items():
        status = done[name]["status"]
        assert status["phase"] == "Escalated", (name, status.get("message"))
        assert "stopped before step" in status["message"], status["message"]
        assert len(writes.templates()) == 1, f"{name}: nothing may be changed"
        assert not [a for a in status["actions"] if a["state"] == "Applied"]


# Valid for the API server's schema, outside the ceilings the tier's operator runs with
# (tests/support/world.operator_environment: Prometheus on 127.0.0.1 only, maxReplicas <= 100).
INVALIDATING_EDITS = {
    "elsewhere": (
        {"metrics": {"prometheusURL": "http://127.0.0.2:9090"}},
        "metrics.prometheusURL http://127.0.0.2:9090 is not allowed by the operator",
    ),
    "huge": (
        {"guardrails": {"maxReplicas": 500}},
        "guardrails.maxReplicas 500 is above the operator's ceiling of 100",
    ),
}


def test_a_policy_made_invalid_for_the_operator_mid_incident_stops_further_actions(
    *,
    fault_api: client.ApiClient,
    fault_apps: client.AppsV1Api,
    fault_namespace: str,
    fault_operator: OperatorProcess,
    signals: Any,
) -> None:
    """The API server accepts the edit; the operator's ceilings do not. Each Incident waits
    for approval of its step when its policy is edited: approved afterwards, it takes no
    action, and says which policy lapsed and why."""
    namespace, apps = fault_namespace, fault_apps
    resources = Resources(fault_api, namespace)
    custom = client.CustomObjectsApi(fault_api)
    with _awaiting_approval(
        resources, apps, names=INVALIDATING_EDITS, operator=fault_operator, signals=signals
    ) as writes_of:
        for name, (edit, _) in INVALIDATING_EDITS.items():
            custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, "mitigationpolicies", name, {"spec": edit}
            )
        # The operator wrote Invalid for this generation, so the edit is in what it decides on.
        valid = {name: _valid_for_its_generation(resources, name) for name in INVALIDATING_EDITS}
        for name in INVALIDATING_EDITS:
            resources.patch_incident(name, {"approved": True})
        done = {
            name: resources.wait_phase(name, "Resolved", "Escalated", "Failed", timeout=30)
            for name in INVALIDATING_EDITS
        }
        replicas = {name: _replicas(apps, namespace, name) for name in INVALIDATING_EDITS}
    for name, writes in writes_of.items():
        _, reason = INVALIDATING_EDITS[name]
        assert (valid[name]["status"], valid[name]["reason"]) == ("False", "NotAllowed")
        assert reason in valid[name]["message"], valid[name]
        status = done[name]["status"]
        assert status["phase"] == "Escalated", (name, status.get("message"))
        said = (
            f"stopped before step 0-rollback: policy {name}, which this Incident followed, "
            f"is Invalid (NotAllowed): {reason}"
        )
        assert said in status["message"], status["message"]
        last = status["timeline"][-1]
        assert last["event"] == "Escalated" and said in last["message"], last
        assert not [a for a in status["actions"] if a["state"] == "Applied"], status["actions"]
        assert len(writes.templates()) == 1, f"{name}: the template must not change"
        assert writes.replicas() == [replicas[name]], f"{name}: nor the replicas"
    assert fault_operator.tracebacks() == [], fault_operator.tail()


def _valid_for_its_generation(resources: Resources, name: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def written() -> bool:
        policy = resources.policy(name)
        conditions = (policy.get("status") or {}).get("conditions") or []
        current = [
            c
            for c in conditions
            if c["type"] == "Valid"
            and c.get("observedGeneration") == policy["metadata"]["generation"]
        ]
        seen.update(current[0] if current else {})
        return bool(current)

    wait_until(written, timeout=30, what=f"policy {name}'s Valid condition for its generation")
    return seen


def _replicas(apps: client.AppsV1Api, namespace: str, name: str) -> int:
    return int(apps.read_namespaced_deployment(name, namespace).spec.replicas)


def test_a_deleted_namespace_is_let_go(
    *,
    fault_api: client.ApiClient,
    fault_apps: client.AppsV1Api,
    fault_namespace: str,
    fault_operator: OperatorProcess,
    signals: Any,
) -> None:
    namespace, apps = fault_namespace, fault_apps
    resources = Resources(fault_api, namespace)
    core = client.CoreV1Api(fault_api)
    deploy_good_then_bad(apps, namespace, "web")
    resources.create(
        policy_manifest("web", app="web", rules=[EVIDENCE_RULE], window="60s", timeout="120s")
    )
    with Responder(fault_api, signals, namespace=namespace, name="web", health=_health):
        fault_operator.start()
        resources.create(incident_manifest("web", target="web"))
        resources.wait_phase("web", "Verifying", "Resolved", "Escalated", "Failed")
        core.delete_namespace(namespace)

        def gone() -> bool:
            try:
                core.read_namespace(namespace)
            except ApiException as exc:
                return exc.status == 404
            return False

        wait_until(gone, timeout=90, what=f"namespace {namespace} to be deleted")
    assert fault_operator.process is not None and fault_operator.process.poll() is None
