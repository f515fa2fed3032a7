"""The operator, running in-process against the real control plane and a real Prometheus:
an Incident is classified, mitigated by its policy, verified, and every step recorded."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from localkube.processes import free_port, wait_until
from tests.support.kube import BAD, GOOD, deployment_manifest, wait_rollout
from tests.support.objects import Resources, incident_manifest, policy_manifest, timeline_events
from tests.support.responder import Responder, container_env, image

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator")]

HEALTHY, FAILING, SLOW = (0.0, 0.2), (0.25, 0.3), (0.0, 25.0)


@pytest.fixture
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture
def resources(api_client: client.ApiClient, namespace: str) -> Resources:
    return Resources(api_client, namespace)


def _deploy(
    apps: client.AppsV1Api, namespace: str, *, replicas: int = 2, env: dict[str, str] | None = None
) -> None:
    manifest = deployment_manifest("web", image=GOOD, replicas=replicas)
    if env:
        manifest["spec"]["template"]["spec"]["containers"][0]["env"] = [
            {"name": k, "value": v} for k, v in env.items()
        ]
    apps.create_namespaced_deployment(namespace, manifest)
    wait_rollout(apps, namespace, "web")


def _ship(apps: client.AppsV1Api, namespace: str, new_image: str) -> None:
    apps.patch_namespaced_deployment(
        "web",
        namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": new_image}]}}}},
    )
    wait_rollout(apps, namespace, "web")


def _bad_image_fails(dep: dict[str, Any]) -> tuple[float, float]:
    return FAILING if image(dep) == BAD else HEALTHY


def test_bad_deploy_is_rolled_back_verified_and_resolved(
    api_client: client.ApiClient,
    apps: client.AppsV1Api,
    resources: Resources,
    namespace: str,
    signals: Any,
) -> None:
    _deploy(apps, namespace)
    _ship(apps, namespace, BAD)
    resources.create(
        policy_manifest(
            "runbooks",
            app="web",
            rules=[
                {
                    "name": "bad-deploy",
                    "when": {"severities": ["P0", "P1"], "recentRolloutWithin": "10m"},
                    "actions": [{"rollback": {}}],
                }
            ],
        )
    )
    with Responder(api_client, signals, namespace=namespace, name="web", health=_bad_image_fails):
        resources.create(incident_manifest("bad-deploy", target="web", title="5xx after deploy"))
        incident = resources.wait_phase("bad-deploy", "Resolved", "Escalated", "Failed")
    status = incident["status"]
    assert status["phase"] == "Resolved", (status.get("message"), status.get("classification"))
    assert status["severity"] == "P1"
    assert status["classification"]["severity"] == "P1"
    assert any("error rate 25" in reason for reason in status["classification"]["reasons"])
    [action] = status["actions"]
    assert action["type"] == "rollback" and action["state"] == "Applied"
    assert action["before"] == {"revision": 2, "images": {"app": BAD}}
    assert action["after"]["images"] == {"app": GOOD}
    dep = apps.read_namespaced_deployment("web", namespace)
    assert dep.spec.template.spec.containers[0].image == GOOD
    assert status["verification"]["passed"] is True
    assert {c["name"] for c in status["verification"]["checks"]} >= {
        "errorRate",
        "p95Latency",
        "podsReady",
    }
    assert timeline_events(incident)[:3] == ["Detected", "Classified", "Planned"]
    assert timeline_events(incident)[-1] == "Resolved"
    for stamp in ("detectedAt", "mitigatedAt", "resolvedAt"):
        assert status[stamp]
    resolved = {c["type"]: c["status"] for c in status["conditions"]}
    assert resolved["Resolved"] == "True"

    core = client.CoreV1Api(api_client)

    def events(kind: str) -> dict[str, str]:
        listed = core.list_namespaced_event(namespace).items
        return {e.reason: e.message for e in listed if e.involved_object.kind == kind}

    def reasons(kind: str) -> set[str]:
        return set(events(kind))

    # One Event per tick sums up its notes: the action's names the classification too.
    wait_until(
        lambda: {"ActionApplied", "Resolved"} <= reasons("Incident"),
        timeout=30,
        what="Events on the Incident",
    )
    assert "Classified: evidence says" in events("Incident")["ActionApplied"]
    wait_until(
        lambda: "ActionApplied" in reasons("Deployment"),
        timeout=30,
        what="Events on the Deployment",
    )


def test_scale_up_is_capped_and_reverted_after_resolution(
    api_client: client.ApiClient,
    apps: client.AppsV1Api,
    resources: Resources,
    namespace: str,
    signals: Any,
) -> None:
    _deploy(apps, namespace, replicas=2)

    def latency_by_replicas(dep: dict[str, Any]) -> tuple[float, float]:
        return SLOW if dep["spec"]["replicas"] < 4 else HEALTHY

    resources.create(
        policy_manifest(
            "surge",
            app="web",
            rules=[{"name": "latency", "actions": [{"scale": {"increment": 10}}]}],
            guardrails={"maxReplicas": 5},
            revert_on_resolve=["scale"],
        )
    )
    with Responder(
        api_client, signals, namespace=namespace, name="web", health=latency_by_replicas
    ):
        resources.create(incident_manifest("surge", target="web"))
        incident = resources.wait_phase("surge", "Resolved", "Escalated", "Failed")
    status = incident["status"]
    assert status["phase"] == "Resolved", status.get("message")
    assert status["severity"] == "P1"  # p95 25s > 20s
    [action] = status["actions"]
    assert action["before"] == {"replicas": 2}
    assert action["after"] == {"replicas": 5, "requested": 12, "capped": True}
    [revert] = status["reverts"]
    assert revert["state"] == "Reverted"
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 2


def test_a_scale_increment_on_a_target_above_the_cap_leaves_it_alone(
    api_client: client.ApiClient,
    apps: client.AppsV1Api,
    resources: Resources,
    namespace: str,
    signals: Any,
) -> None:
    _deploy(apps, namespace, replicas=12)
    before = apps.read_namespaced_deployment("web", namespace)
    resources.create(
        policy_manifest(
            "surge",
            app="web",
            rules=[{"name": "latency", "actions": [{"scale": {"increment": 2}}]}],
            guardrails={"maxReplicas": 10},
        )
    )
    with Responder(api_client, signals, namespace=namespace, name="web", health=lambda _: SLOW):
        resources.create(incident_manifest("surge", target="web"))
        incident = resources.wait_phase("surge", "Resolved", "Escalated", "Failed")
    status = incident["status"]
    assert status["phase"] == "Escalated", status.get("message")
    [action] = status["actions"]
    assert action["state"] == "Skipped"
    assert action["message"] == (
        "Deployment web already has 12 replicas (requested 14, capped at maxReplicas 10)"
    )
    after = apps.read_namespaced_deployment("web", namespace)
    assert after.spec.replicas == 12
    assert after.metadata.generation == before.metadata.generation


def test_restart_clears_a_leak(
    api_client: client.ApiClient,
    apps: client.AppsV1Api,
    resources: Resources,
    namespace: str,
    signals: Any,
) -> None:
    _deploy(apps, namespace)

    def leaky_until_restarted(dep: dict[str, Any]) -> tuple[float, float]:
        restarted = (dep["spec"]["template"]["metadata"].get("annotations") or {}).get(
            "kubectl.kubernetes.io/restartedAt"
        )
        return HEALTHY if restarted else (0.0, 8.0)

    resources.create(
        policy_manifest("leak", app="web", rules=[{"name": "memory", "actions": [{"restart": {}}]}])
    )
    with Responder(
        api_client, signals, namespace=namespace, name="web", health=leaky_until_restarted
    ):
        resources.create(incident_manifest("leak", target="web"))
        incident = resources.wait_phase("leak", "Resolved", "Escalated", "Failed")
    status = incident["status"]
    assert status["phase"] == "Resolved", status.get("message")
    assert status["classification"]["severity"] == "P2"  # p95 8s: degraded
    [action] = status["actions"]
    annotations = apps.read_namespaced_deployment(
        "web", namespace
    ).spec.template.metadata.annotations
    assert annotations["kubectl.kubernetes.io/restartedAt"] == action["after"]["restartedAt"]


def test_set_env_disables_a_feature_and_is_restored(
    api_client: client.ApiClient,
    apps: client.AppsV1Api,
    resources: Resources,
    namespace: str,
    signals: Any,
) -> None:
    _deploy(apps, namespace, env={"LLM_MODEL": "glm-4.5"})

    def search_errors(dep: dict[str, Any]) -> tuple[float, float]:
        return HEALTHY if container_env(dep).get("DISABLE_WEB_SEARCH") == "true" else FAILING

    resources.create(
        policy_manifest(
            "feature",
            app="web",
            rules=[
                {"name": "search", "actions": [{"setEnv": {"env": {"DISABLE_WEB_SEARCH": "true"}}}]}
            ],
            revert_on_resolve=["setEnv"],
        )
    )
    with Responder(api_client, signals, namespace=namespace, name="web", health=search_errors):
        resources.create(incident_manifest("search", target="web"))
        incident = resources.wait_phase("search", "Resolved", "Escalated", "Failed")
    status = incident["status"]
    assert status["phase"] == "Resolved", status.get("message")
    assert status["actions"][0]["before"] == {
        "container": "app",
        "env": {},
        "unset": ["DISABLE_WEB_SEARCH"],
    }
    assert status["reverts"][0]["state"] == "Reverted"
    env = container_env(
        api_client.sanitize_for_serialization(apps.read_namespaced_deployment("web", namespace))
    )
    assert env == {"LLM_MODEL": "glm-4.5"}


def test_ladder_moves_to_maintenance_then_escalates_and_manual_resolve_restores(
    api_client: client.ApiClient,
    apps: client.AppsV1Api,
    resources: Resources,
    namespace: str,
    signals: Any,
) -> None:
    core = client.CoreV1Api(api_client)
    _deploy(apps, namespace, replicas=3)
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
        },
    )
    resources.create(
        policy_manifest(
            "outage",
            app="web",
            rules=[
                {
                    "name": "outage",
                    "actions": [
                        {"rollback": {}},
                        {
                            "maintenance": {
                                "service": "web",
                                "backendSelector": {"app": "maintenance-page"},
                            }
                        },
                    ],
                }
            ],
            revert_on_resolve=["maintenance"],
            timeout="4s",
        )
    )
    with Responder(
        api_client, signals, namespace=namespace, name="web", health=lambda dep: FAILING
    ):
        resources.create(incident_manifest("outage", target="web"))
        incident = resources.wait_phase("outage", "Escalated", "Resolved", "Failed")
    status = incident["status"]
    assert status["phase"] == "Escalated"
    rollback, maintenance = status["actions"]
    assert rollback["state"] == "Skipped" and "no previous revision" in rollback["message"]
    assert maintenance["state"] == "Applied"
    assert core.read_namespaced_service("web", namespace).spec.selector == {
        "app": "maintenance-page"
    }
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 0

    resources.patch_incident("outage", {"resolve": True})
    incident = resources.wait_phase("outage", "Resolved")
    assert incident["status"]["reverts"][0]["state"] == "Reverted"
    assert core.read_namespaced_service("web", namespace).spec.selector == {"app": "web"}
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 3


def test_dry_run_records_the_plan_and_touches_nothing(
    api_client: client.ApiClient,
    apps: client.AppsV1Api,
    resources: Resources,
    namespace: str,
    signals: Any,
) -> None:
    _deploy(apps, namespace)
    _ship(apps, namespace, BAD)
    before = apps.read_namespaced_deployment("web", namespace)
    resources.create(
        policy_manifest(
            "runbooks",
            app="web",
            rules=[{"name": "any", "actions": [{"rollback": {}}, {"restart": {}}]}],
        )
    )
    with Responder(api_client, signals, namespace=namespace, name="web", health=_bad_image_fails):
        resources.create(incident_manifest("drill", target="web", dryRun=True))
        incident = resources.wait_phase("drill", "Escalated", "Resolved", "Failed")
    assert [a["state"] for a in incident["status"]["actions"]] == ["DryRun", "DryRun"]
    assert "dry run" in incident["status"]["message"]
    after = apps.read_namespaced_deployment("web", namespace)
    assert after.metadata.resource_version == before.metadata.resource_version


def test_approval_gate_waits_then_proceeds(
    api_client: client.ApiClient,
    apps: client.AppsV1Api,
    resources: Resources,
    namespace: str,
    signals: Any,
) -> None:
    _deploy(apps, namespace, replicas=2)
    resources.create(
        policy_manifest(
            "gated",
            app="web",
            rules=[{"name": "scale", "actions": [{"scale": {"replicas": 4}}]}],
            guardrails={"requireApprovalFor": ["scale"]},
        )
    )

    def healthy_when_scaled(dep: dict[str, Any]) -> tuple[float, float]:
        return HEALTHY if dep["spec"]["replicas"] >= 4 else SLOW

    with Responder(
        api_client, signals, namespace=namespace, name="web", health=healthy_when_scaled
    ):
        resources.create(incident_manifest("gated", target="web"))
        waiting = resources.wait_phase("gated", "AwaitingApproval", "Escalated", "Resolved")
        assert waiting["status"]["phase"] == "AwaitingApproval"
        assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 2
        resources.patch_incident("gated", {"approved": True})
        incident = resources.wait_phase("gated", "Resolved", "Escalated", "Failed")
    assert incident["status"]["phase"] == "Resolved", incident["status"].get("message")
    assert "Approved" in timeline_events(incident)
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 4


def test_cooldown_refuses_a_second_mitigation_of_the_same_target(
    api_client: client.ApiClient,
    apps: client.AppsV1Api,
    resources: Resources,
    namespace: str,
    signals: Any,
) -> None:
    _deploy(apps, namespace)
    _ship(apps, namespace, BAD)
    resources.create(
        policy_manifest(
            "runbooks", app="web", rules=[{"name": "any", "actions": [{"rollback": {}}]}]
        )
    )
    with Responder(api_client, signals, namespace=namespace, name="web", health=_bad_image_fails):
        resources.create(incident_manifest("first", target="web"))
        assert (
            resources.wait_phase("first", "Resolved", "Escalated")["status"]["phase"] == "Resolved"
        )
        _ship(apps, namespace, BAD)
        revision = apps.read_namespaced_deployment("web", namespace).metadata.annotations[
            "deployment.kubernetes.io/revision"
        ]
        resources.create(incident_manifest("second", target="web"))
        second = resources.wait_phase("second", "Escalated", "Resolved", "Failed")
    assert second["status"]["phase"] == "Escalated"
    assert "cooldown" in second["status"]["message"]
    assert "Refused" in timeline_events(second)
    dep = apps.read_namespaced_deployment("web", namespace)
    assert dep.spec.template.spec.containers[0].image == BAD
    assert dep.metadata.annotations["deployment.kubernetes.io/revision"] == revision


def test_protected_namespace_is_refused(
    api_client: client.ApiClient,
    apps: client.AppsV1Api,
    resources: Resources,
    namespace: str,
    signals: Any,
) -> None:
    _deploy(apps, namespace)
    _ship(apps, namespace, BAD)
    resources.create(
        policy_manifest(
            "runbooks",
            app="web",
            rules=[{"name": "any", "actions": [{"rollback": {}}]}],
            guardrails={"protectedNamespaces": [namespace]},
        )
    )
    with Responder(api_client, signals, namespace=namespace, name="web", health=_bad_image_fails):
        resources.create(incident_manifest("protected", target="web"))
        incident = resources.wait_phase("protected", "Escalated", "Resolved", "Failed")
    assert incident["status"]["phase"] == "Escalated"
    assert "protected" in incident["status"]["message"]
    assert not incident["status"].get("actions")
    assert (
        apps.read_namespaced_deployment("web", namespace).spec.template.spec.containers[0].image
        == BAD
    )


def test_prometheus_down_is_unknown_never_healthy(
    apps: client.AppsV1Api, resources: Resources, namespace: str
) -> None:
    _deploy(apps, namespace)
    resources.create(
        policy_manifest(
            "blind",
            app="web",
            prometheus_url=f"http://127.0.0.1:{free_port()}",
            rules=[
                {"name": "p1", "when": {"severities": ["P0", "P1"]}, "actions": [{"restart": {}}]}
            ],
        )
    )
    resources.create(incident_manifest("blind", target="web"))
    incident = resources.wait_phase("blind", "Escalated", "Resolved", "Failed")
    classification = incident["status"]["classification"]
    assert classification["severity"] == "Unknown"
    assert classification["evidenceComplete"] is False
    assert any("unreachable" in reason for reason in classification["reasons"])
    assert incident["status"]["phase"] == "Escalated"
    assert apps.read_namespaced_deployment("web", namespace).metadata.generation == 1


def test_no_policy_escalates_with_the_reason(
    apps: client.AppsV1Api, resources: Resources, namespace: str
) -> None:
    _deploy(apps, namespace)
    resources.create(incident_manifest("orphan", target="web", severity="P1"))
    incident = resources.wait_phase("orphan", "Escalated", "Resolved", "Failed")
    assert incident["status"]["phase"] == "Escalated"
    assert "no valid MitigationPolicy" in incident["status"]["message"]
    assert apps.read_namespaced_deployment("web", namespace).metadata.generation == 1


def test_policy_status_reports_validity_and_coverage_without_touching_the_spec(
    apps: client.AppsV1Api, resources: Resources, namespace: str
) -> None:
    apps.create_namespaced_deployment(namespace, deployment_manifest("web"))
    apps.create_namespaced_deployment(namespace, deployment_manifest("other"))
    resources.create(
        policy_manifest("runbooks", app="web", rules=[{"name": "r", "actions": [{"restart": {}}]}])
    )

    def covered() -> list[str]:
        return list(
            (resources.policy("runbooks").get("status") or {}).get("coveredDeployments") or []
        )

    wait_until(lambda: covered() == ["web"], timeout=30, what="the policy to cover web")
    canary = deployment_manifest("web-canary")
    canary["metadata"]["labels"]["app"] = "web"
    apps.create_namespaced_deployment(namespace, canary)
    wait_until(
        lambda: covered() == ["web", "web-canary"],
        timeout=30,
        what="coverage to follow new Deployments",
    )
    policy = resources.policy("runbooks")
    [valid] = policy["status"]["conditions"]
    assert (valid["type"], valid["status"], valid["reason"]) == ("Valid", "True", "Valid")
    assert policy["metadata"]["generation"] == 1
    assert not any(
        k.startswith("mitigator.luminamind.io")
        for k in (policy["metadata"].get("annotations") or {})
    )
    assert not policy["metadata"].get("finalizers")


def test_policy_coverage_follows_label_changes_and_deletions(
    apps: client.AppsV1Api, resources: Resources, namespace: str
) -> None:
    """The operator's own Deployment watch keeps coverage current: a Deployment relabelled
    into and out of the selector, and one deleted."""
    apps.create_namespaced_deployment(namespace, deployment_manifest("web", replicas=0))
    apps.create_namespaced_deployment(namespace, deployment_manifest("api", replicas=0))
    resources.create(
        policy_manifest("runbooks", app="web", rules=[{"name": "r", "actions": [{"restart": {}}]}])
    )

    def covered() -> list[str]:
        status = resources.policy("runbooks").get("status") or {}
        assert status.get("coveredCount", 0) == len(status.get("coveredDeployments") or [])
        return list(status.get("coveredDeployments") or [])

    wait_until(lambda: covered() == ["web"], timeout=30, what="the policy to cover web")
    apps.patch_namespaced_deployment("api", namespace, {"metadata": {"labels": {"app": "web"}}})
    wait_until(lambda: covered() == ["api", "web"], timeout=30, what="api relabelled in")
    apps.delete_namespaced_deployment("web", namespace)
    wait_until(lambda: covered() == ["api"], timeout=30, what="web deleted")
    apps.patch_namespaced_deployment("api", namespace, {"metadata": {"labels": {"app": "api"}}})
    wait_until(lambda: covered() == [], timeout=30, what="api relabelled out")


def test_escalation_webhooks_are_sent_recorded_and_retried(
    apps: client.AppsV1Api,
    resources: Resources,
    namespace: str,
    webhook_receiver: tuple[str, list[Any]],
) -> None:
    url, received = webhook_receiver
    _deploy(apps, namespace)
    resources.create(
        policy_manifest(
            "paging",
            app="web",
            rules=[
                {"name": "p0-only", "when": {"severities": ["P0"]}, "actions": [{"restart": {}}]}
            ],
            escalation=[
                {
                    "after": "0s",
                    "level": 1,
                    "name": "on-call",
                    "webhook": f"http://127.0.0.1:{free_port()}/down",
                },
                {"after": "1s", "level": 2, "name": "engineering-lead", "webhook": url},
                {"after": "2h", "level": 3, "name": "vp-engineering", "webhook": url},
            ],
        )
    )
    resources.create(incident_manifest("page", target="web", severity="P2"))
    incident = resources.wait_phase("page", "Escalated", "Resolved", "Failed")
    assert incident["status"]["phase"] == "Escalated"

    def notices() -> dict[int, dict[str, Any]]:
        status = resources.incident("page").get("status") or {}
        return {n["level"]: n for n in (status.get("escalation") or {}).get("levels") or []}

    wait_until(
        lambda: 2 in notices() and (notices().get(1) or {}).get("attempts", 0) >= 2,
        timeout=30,
        what="levels 1 and 2 to be notified (1 retried)",
    )
    levels = notices()
    assert levels[1]["delivered"] is False and levels[1]["lastError"]
    assert levels[2]["delivered"] is True
    assert 3 not in levels, "level 3 falls due 2h after detection, not now"
    [payload] = [r["payload"] for r in received]
    assert payload["level"] == 2 and payload["levelName"] == "engineering-lead"
    assert "Incident" in payload["text"] and "Escalated" in payload["text"]
