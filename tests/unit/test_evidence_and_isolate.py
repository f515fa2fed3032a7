"""Evidence kept before destruction stays within a ConfigMap's size, and says what did not
fit; which steps keep it; an isolate step's NetworkPolicy selects what the Deployment
selects and denies everything."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mitigator.actions.builders import build_isolate, isolation_name, isolation_policy
from mitigator.actions.change import Change
from mitigator.actions.evidence import (
    MAX_BYTES,
    build_config_map,
    destroys_pods,
    evidence_name,
)
from mitigator.models import ActionType, RestartAction
from mitigator.models.evidence import PodLog
from mitigator.models.execution import ActionRequest


def _deployment() -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "shop", "uid": "d-1"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "env": [
                                {"name": "OPENAI_API_KEY", "value": "sk-live-123"},
                                {"name": "DISABLE_WEB_SEARCH", "value": "true"},
                            ],
                        }
                    ]
                },
            },
        },
    }


def _request() -> ActionRequest:
    return ActionRequest(
        namespace="shop",
        target="web",
        incident_uid="uid-1",
        incident_name="errors",
        action_id="1-restart",
        action=RestartAction(),
        max_replicas=10,
        admit=lambda _: None,
        now=datetime(2026, 3, 1, tzinfo=UTC),
    )


def test_evidence_is_bounded_owned_and_names_what_did_not_fit() -> None:
    logs = [PodLog(f"web-{i}", "app", "x" * 1000 + "\n" + "line\n" * 20000) for i in range(40)]
    events = [
        {"involvedObject": {"kind": "Pod", "name": "web-0"}, "reason": "Killing", "message": "m"}
    ]
    body = build_config_map(_request(), deployment=_deployment(), pods=[], logs=logs, events=events)
    data = body["data"]
    assert sum(len(v.encode()) for v in data.values()) <= MAX_BYTES + 1024
    assert "web-0.app.log" in data and data["web-0.app.log"].startswith("[earlier lines cut")
    assert "web-39.app.log" in data["omitted.txt"]
    assert "Pod/web-0 Killing" in data["events.txt"]
    assert '"replicas": 2' in data["spec.json"]
    # The spec, but no credential copied into a ConfigMap: the variable's name stays.
    assert "sk-live-123" not in data["spec.json"] and "OPENAI_API_KEY" in data["spec.json"]
    assert '"value": "true"' in data["spec.json"]
    [owner] = body["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Incident", "errors", "uid-1")
    assert body["metadata"]["name"] == evidence_name("errors", "1-restart")
    assert len(evidence_name("x" * 300, "0-rollback")) == 253


def test_evidence_is_kept_before_steps_that_replace_remove_or_isolate_pods() -> None:
    def change(before: int, after: int) -> Change:
        return Change([], {"replicas": before}, {"replicas": after}, "")

    for kept in (
        ActionType.ROLLBACK,
        ActionType.RESTART,
        ActionType.MAINTENANCE,
        ActionType.ISOLATE,
    ):
        assert destroys_pods(kept, change(2, 2))
    assert destroys_pods(ActionType.SCALE, change(4, 2))
    assert not destroys_pods(ActionType.SCALE, change(2, 4))
    assert not destroys_pods(ActionType.SET_ENV, change(2, 2))
    # An autoscaler's floor raised: no replicas in the record, no pod removed.
    assert not destroys_pods(
        ActionType.SCALE, Change([], {"minReplicas": 1}, {"minReplicas": 3}, "")
    )


def test_isolation_selects_the_deployments_pods_and_denies_all() -> None:
    name = isolation_name("breach", "0-isolate")
    policy = isolation_policy(_deployment(), name=name, incident="breach", incident_uid="u-9")
    assert policy["spec"] == {
        "podSelector": {"matchLabels": {"app": "web"}},
        "policyTypes": ["Ingress", "Egress"],
    }
    assert policy["metadata"]["ownerReferences"][0]["uid"] == "u-9"
    change = build_isolate(_deployment(), name=name)
    assert change.deployment_ops == []  # the pods stay, for forensics
    assert change.before["networkPolicy"] == change.after["networkPolicy"] == name
