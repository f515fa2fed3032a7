"""The examples are valid, and the runbook policy says what the guide says."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from mitigator.domain.plan import plan_steps, select_rule
from mitigator.models import ActionType, IncidentSpec, PolicySpec, Severity

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODELS: dict[str, type[IncidentSpec] | type[PolicySpec]] = {
    "Incident": IncidentSpec,
    "MitigationPolicy": PolicySpec,
}


def _documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append((str(path.relative_to(EXAMPLES)), document))
    return found


DOCUMENTS = _documents()


def test_the_required_examples_exist() -> None:
    names = {name for name, _ in DOCUMENTS}
    assert "policies/luminamind-runbooks.yaml" in names
    incidents = [document for _, document in DOCUMENTS if document["kind"] == "Incident"]
    assert any(document["spec"].get("dryRun") for document in incidents)
    assert any(document["spec"].get("actions") for document in incidents)
    assert any(document["spec"].get("source", {}).get("type") == "manual" for document in incidents)


@pytest.mark.parametrize(("name", "document"), DOCUMENTS, ids=[name for name, _ in DOCUMENTS])
def test_example_validates(name: str, document: dict[str, Any]) -> None:
    assert document["apiVersion"] == "mitigator.luminamind.io/v1alpha1"
    assert document["metadata"]["name"]
    # Namespace-free, so `kubectl apply -n <ns> -f examples/` puts them anywhere.
    assert "namespace" not in document["metadata"]
    MODELS[document["kind"]].model_validate(document["spec"])


def _runbooks() -> PolicySpec:
    (document,) = [d for name, d in DOCUMENTS if name == "policies/luminamind-runbooks.yaml"]
    return PolicySpec.model_validate(document["spec"])


RECENT = timedelta(minutes=5)
LONG_AGO = timedelta(days=3)


@pytest.mark.parametrize(
    ("severity", "alertname", "rollout_age", "rule", "ladder"),
    [
        # Runbook 1: a bad deployment → rollout undo, then maintenance.
        (Severity.P0, "ServiceDown", RECENT, "bad-rollout", ["rollback", "maintenance"]),
        (Severity.P1, "HighErrorRate", RECENT, "bad-rollout", ["rollback", "maintenance"]),
        # Runbook 1 without a recent rollout: restart, then maintenance.
        (Severity.P0, "ServiceDown", LONG_AGO, "outage", ["restart", "maintenance"]),
        # Runbook 2: a failing tool is disabled, whatever the severity.
        (Severity.P1, "WebSearchErrors", RECENT, "web-search-dependency", ["setEnv"]),
        # Runbook 3: more capacity.
        (Severity.P2, "HighLatency", None, "high-latency", ["scale", "restart"]),
        # Runbook 4: restart to clear the leak.
        (Severity.P2, "HighMemoryUsage", None, "memory-leak", ["restart"]),
        # Nothing in the guide for a P1 error rate without a recent rollout: people decide.
        (Severity.P1, "HighErrorRate", LONG_AGO, None, []),
    ],
)
def test_the_runbook_policy_follows_the_guide(
    severity: Severity,
    alertname: str,
    rollout_age: timedelta | None,
    rule: str | None,
    ladder: list[str],
) -> None:
    policy = _runbooks()
    chosen = select_rule(
        policy, severity=severity, alertname=alertname, last_rollout_age=rollout_age
    )
    assert (chosen.name if chosen else None) == rule
    incident = IncidentSpec.model_validate(
        {"target": {"name": "luminamind"}, "source": {"alertname": alertname}}
    )
    plan = plan_steps(incident, policy, severity=severity, last_rollout_age=rollout_age)
    assert [str(step.action_type) for step in plan.steps] == ladder


def test_the_runbook_policy_guardrails_and_escalation() -> None:
    policy = _runbooks()
    assert policy.guardrails.require_approval_for == (ActionType.MAINTENANCE,)
    revertible = {ActionType.SCALE, ActionType.SET_ENV, ActionType.MAINTENANCE}
    assert set(policy.revert_on_resolve) == revertible
    assert [(level.level, level.after) for level in policy.escalation] == [
        (1, timedelta(minutes=15)),
        (2, timedelta(hours=1)),
        (3, timedelta(hours=2)),
        (4, timedelta(hours=4)),
    ]
    (latency,) = [rule for rule in policy.rules if rule.name == "high-latency"]
    scale = latency.actions[0].scale
    assert scale is not None and scale.increment is not None and scale.max_replicas is not None
    (web_search,) = [rule for rule in policy.rules if rule.name == "web-search-dependency"]
    set_env = web_search.actions[0].set_env
    assert set_env is not None and set_env.env == {"DISABLE_WEB_SEARCH": "true"}
