"""Malformed Incidents and MitigationPolicies, each of which must be refused.

One table, two consumers: tests/unit/test_invalid_cases.py holds the pydantic models to it,
and the integration tests hold the real API server (the CRDs' schemas and CEL rules) to it.
`expected_field` is a substring of the refusal both give: the path of the offending field
(kubectl style, e.g. "spec.actions[0].scale"), so a person is told where the problem is.

Every case is refused by the schema or a CEL rule, never by unknown-field pruning, so it holds
whatever field validation mode the client asks for.
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

API_VERSION = "mitigator.luminamind.io/v1alpha1"


class InvalidCase(NamedTuple):
    description: str
    kind: str
    manifest: dict[str, Any]
    expected_field: str


def _incident(name: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"target": {"name": "luminamind"}}
    base.update(spec)
    return {
        "apiVersion": API_VERSION,
        "kind": "Incident",
        "metadata": {"name": name},
        "spec": base,
    }


_VALID_RULES = [{"name": "restart", "actions": [{"restart": {}}]}]


def _policy(name: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "luminamind"}},
        "rules": copy.deepcopy(_VALID_RULES),
    }
    base.update(spec)
    return {
        "apiVersion": API_VERSION,
        "kind": "MitigationPolicy",
        "metadata": {"name": name},
        "spec": base,
    }


def _policy_with_rule_actions(name: str, actions: list[dict[str, Any]]) -> dict[str, Any]:
    return _policy(name, rules=[{"name": "r", "actions": actions}])


INVALID_CASES: list[InvalidCase] = [
    # ---- Incident: the target
    InvalidCase(
        "incident without a target",
        "Incident",
        {**_incident("no-target"), "spec": {"title": "what is hurting?"}},
        "spec.target",
    ),
    InvalidCase(
        "target without a name",
        "Incident",
        _incident("no-target-name", target={"kind": "Deployment"}),
        "spec.target.name",
    ),
    InvalidCase(
        "target name that is not a DNS-1123 subdomain",
        "Incident",
        _incident("bad-target-name", target={"name": "Lumina_Mind"}),
        "spec.target.name",
    ),
    InvalidCase(
        "target kind other than Deployment",
        "Incident",
        _incident("bad-target-kind", target={"kind": "StatefulSet", "name": "luminamind"}),
        "spec.target.kind",
    ),
    # ---- Incident: severity, source
    InvalidCase(
        "severity outside P0..P3",
        "Incident",
        _incident("bad-severity", severity="P5"),
        "spec.severity",
    ),
    InvalidCase(
        "severity Unknown given by a person (it is a conclusion, not a request)",
        "Incident",
        _incident("unknown-severity", severity="Unknown"),
        "spec.severity",
    ),
    InvalidCase(
        "source type that does not exist",
        "Incident",
        _incident("bad-source-type", source={"type": "pagerduty"}),
        "spec.source.type",
    ),
    InvalidCase(
        "resolvedAt that is not a date-time",
        "Incident",
        _incident("bad-resolved-at", source={"type": "alertmanager", "resolvedAt": "yesterday"}),
        "spec.source.resolvedAt",
    ),
    InvalidCase(
        "title longer than 256 characters",
        "Incident",
        _incident("long-title", title="x" * 257),
        "spec.title",
    ),
    # ---- Incident: action steps
    InvalidCase(
        "step with two action kinds",
        "Incident",
        _incident("two-kinds", actions=[{"restart": {}, "scale": {"replicas": 3}}]),
        "spec.actions[0]",
    ),
    InvalidCase(
        "step with no action kind",
        "Incident",
        _incident("zero-kinds", actions=[{"id": "nothing"}]),
        "spec.actions[0]",
    ),
    InvalidCase(
        "empty list of explicit actions",
        "Incident",
        _incident("empty-actions", actions=[]),
        "spec.actions",
    ),
    InvalidCase(
        "more than 10 steps",
        "Incident",
        _incident("too-many-steps", actions=[{"restart": {}}] * 11),
        "spec.actions",
    ),
    InvalidCase(
        "two steps with the same id",
        "Incident",
        _incident(
            "duplicate-step-ids",
            actions=[{"id": "again", "restart": {}}, {"id": "again", "rollback": {}}],
        ),
        "spec.actions",
    ),
    InvalidCase(
        "step id that starts with a digit (reserved for generated ids)",
        "Incident",
        _incident("bad-step-id", actions=[{"id": "0-restart", "restart": {}}]),
        "spec.actions[0].id",
    ),
    InvalidCase(
        "scale with both replicas and increment",
        "Incident",
        _incident("scale-both", actions=[{"scale": {"replicas": 3, "increment": 1}}]),
        "spec.actions[0].scale",
    ),
    InvalidCase(
        "scale with neither replicas nor increment",
        "Incident",
        _incident("scale-neither", actions=[{"scale": {"max": 5}}]),
        "spec.actions[0].scale",
    ),
    InvalidCase(
        "scale.max below scale.replicas",
        "Incident",
        _incident("scale-max-below", actions=[{"scale": {"replicas": 6, "max": 4}}]),
        "spec.actions[0].scale",
    ),
    InvalidCase(
        "negative replicas",
        "Incident",
        _incident("negative-replicas", actions=[{"scale": {"replicas": -1}}]),
        "spec.actions[0].scale.replicas",
    ),
    InvalidCase(
        "zero increment",
        "Incident",
        _incident("zero-increment", actions=[{"scale": {"increment": 0}}]),
        "spec.actions[0].scale.increment",
    ),
    InvalidCase(
        "rollback to revision 0",
        "Incident",
        _incident("revision-zero", actions=[{"rollback": {"toRevision": 0}}]),
        "spec.actions[0].rollback.toRevision",
    ),
    InvalidCase(
        "setEnv with a name that is not an environment variable name",
        "Incident",
        _incident("bad-env-name", actions=[{"setEnv": {"env": {"DISABLE-WEB-SEARCH": "true"}}}]),
        "spec.actions[0].setEnv.env",
    ),
    InvalidCase(
        "setEnv with no variables",
        "Incident",
        _incident("empty-env", actions=[{"setEnv": {"env": {}}}]),
        "spec.actions[0].setEnv.env",
    ),
    InvalidCase(
        "maintenance with an unknown way to treat other Services",
        "Incident",
        _incident(
            "maintenance-other-services",
            actions=[
                {
                    "maintenance": {
                        "backendSelector": {"app": "maintenance"},
                        "otherServices": "ignore",
                    }
                }
            ],
        ),
        "spec.actions[0].maintenance.otherServices",
    ),
    InvalidCase(
        "maintenance with an empty backend selector",
        "Incident",
        _incident(
            "maintenance-empty-backend",
            actions=[{"maintenance": {"service": "luminamind", "backendSelector": {}}}],
        ),
        "spec.actions[0].maintenance.backendSelector",
    ),
    InvalidCase(
        "maintenance with Retry-After of 0 seconds",
        "Incident",
        _incident(
            "maintenance-retry-zero",
            actions=[
                {
                    "maintenance": {
                        "service": "luminamind",
                        "backendSelector": {"app": "maintenance"},
                        "retryAfterSeconds": 0,
                    }
                }
            ],
        ),
        "spec.actions[0].maintenance.retryAfterSeconds",
    ),
    # ---- MitigationPolicy
    InvalidCase(
        "policy with an empty selector",
        "MitigationPolicy",
        _policy("empty-selector", selector={}),
        "spec.selector",
    ),
    InvalidCase(
        "policy with empty matchLabels and matchExpressions",
        "MitigationPolicy",
        _policy("empty-selector-lists", selector={"matchLabels": {}, "matchExpressions": []}),
        "spec.selector",
    ),
    InvalidCase(
        "selector expression In without values",
        "MitigationPolicy",
        _policy(
            "in-without-values",
            selector={"matchExpressions": [{"key": "app", "operator": "In"}]},
        ),
        "spec.selector.matchExpressions[0]",
    ),
    InvalidCase(
        "policy with no rules",
        "MitigationPolicy",
        _policy("no-rules", rules=[]),
        "spec.rules",
    ),
    InvalidCase(
        "policy without the rules field",
        "MitigationPolicy",
        {**_policy("missing-rules"), "spec": {"selector": {"matchLabels": {"app": "x"}}}},
        "spec.rules",
    ),
    InvalidCase(
        "two rules with the same name",
        "MitigationPolicy",
        _policy(
            "duplicate-rule-names",
            rules=[
                {"name": "same", "actions": [{"restart": {}}]},
                {"name": "same", "actions": [{"rollback": {}}]},
            ],
        ),
        "spec.rules",
    ),
    InvalidCase(
        "rule without actions",
        "MitigationPolicy",
        _policy("rule-no-actions", rules=[{"name": "idle", "actions": []}]),
        "spec.rules[0].actions",
    ),
    InvalidCase(
        "rule matching a severity that does not exist",
        "MitigationPolicy",
        _policy(
            "rule-bad-severity",
            rules=[{"name": "r", "when": {"severities": ["P9"]}, "actions": [{"restart": {}}]}],
        ),
        "spec.rules[0].when.severities[0]",
    ),
    InvalidCase(
        "recentRolloutWithin that is not a duration",
        "MitigationPolicy",
        _policy(
            "bad-rollout-window",
            rules=[
                {
                    "name": "r",
                    "when": {"recentRolloutWithin": "30 minutes"},
                    "actions": [{"rollback": {}}],
                }
            ],
        ),
        "spec.rules[0].when.recentRolloutWithin",
    ),
    InvalidCase(
        "cooldown that is not a duration",
        "MitigationPolicy",
        _policy("bad-cooldown", guardrails={"cooldown": "10 minutes"}),
        "spec.guardrails.cooldown",
    ),
    InvalidCase(
        "negative verification window",
        "MitigationPolicy",
        _policy("negative-window", verification={"window": "-30s"}),
        "spec.verification.window",
    ),
    InvalidCase(
        "rule step with two action kinds",
        "MitigationPolicy",
        _policy_with_rule_actions("rule-two-kinds", [{"rollback": {}, "restart": {}}]),
        "spec.rules[0].actions[0]",
    ),
    InvalidCase(
        "rule step scaling to negative replicas",
        "MitigationPolicy",
        _policy_with_rule_actions("rule-negative-replicas", [{"scale": {"replicas": -2}}]),
        "spec.rules[0].actions[0].scale.replicas",
    ),
    InvalidCase(
        "rule step setting an invalid environment variable name",
        "MitigationPolicy",
        _policy_with_rule_actions("rule-bad-env", [{"setEnv": {"env": {"1ST": "x"}}}]),
        "spec.rules[0].actions[0].setEnv.env",
    ),
    InvalidCase(
        "prometheusURL that is not http(s)",
        "MitigationPolicy",
        _policy("bad-prometheus-url", metrics={"prometheusURL": "prometheus:9090"}),
        "spec.metrics.prometheusURL",
    ),
    InvalidCase(
        "metrics template with an unknown placeholder",
        "MitigationPolicy",
        _policy(
            "bad-template",
            metrics={"errorRate": 'sum(rate(errors_total{deployment="$deployment"}[1m]))'},
        ),
        "spec.metrics.errorRate",
    ),
    InvalidCase(
        "P2 error rate threshold above the P1 one",
        "MitigationPolicy",
        _policy("p2-above-p1", severity={"p1ErrorRate": 0.01, "p2ErrorRate": 0.02}),
        "spec.severity",
    ),
    InvalidCase(
        "error rate threshold above 1",
        "MitigationPolicy",
        _policy("rate-above-one", severity={"p1ErrorRate": 5}),
        "spec.severity.p1ErrorRate",
    ),
    InvalidCase(
        "maxReplicas of 0",
        "MitigationPolicy",
        _policy("zero-max-replicas", guardrails={"maxReplicas": 0}),
        "spec.guardrails.maxReplicas",
    ),
    InvalidCase(
        "approval required for an action type that does not exist",
        "MitigationPolicy",
        _policy("bad-approval-type", guardrails={"requireApprovalFor": ["delete"]}),
        "spec.guardrails.requireApprovalFor[0]",
    ),
    InvalidCase(
        "revertOnResolve naming an action that cannot be reverted",
        "MitigationPolicy",
        _policy("revert-rollback", revertOnResolve=["rollback"]),
        "spec.revertOnResolve[0]",
    ),
    InvalidCase(
        "escalation level without `after`",
        "MitigationPolicy",
        _policy("escalation-no-after", escalation=[{"level": 1, "name": "on-call"}]),
        "spec.escalation[0].after",
    ),
    InvalidCase(
        "escalation level 0",
        "MitigationPolicy",
        _policy("escalation-level-zero", escalation=[{"level": 0, "after": "15m"}]),
        "spec.escalation[0].level",
    ),
    InvalidCase(
        "escalation levels out of order",
        "MitigationPolicy",
        _policy(
            "escalation-out-of-order",
            escalation=[{"level": 1, "after": "1h"}, {"level": 2, "after": "15m"}],
        ),
        "spec.escalation",
    ),
    InvalidCase(
        "two escalation entries for the same level",
        "MitigationPolicy",
        _policy(
            "escalation-duplicate-level",
            escalation=[{"level": 1, "after": "15m"}, {"level": 1, "after": "30m"}],
        ),
        "spec.escalation",
    ),
    InvalidCase(
        "escalation webhook that is not http(s)",
        "MitigationPolicy",
        _policy(
            "escalation-bad-webhook",
            escalation=[{"level": 1, "after": "15m", "webhook": "mailto:oncall@company.com"}],
        ),
        "spec.escalation[0].webhook",
    ),
    # ---- MitigationPolicy: receivers keep their URLs in Secrets (issue 11)
    InvalidCase(
        "slack receiver without urlSecretRef",
        "MitigationPolicy",
        _policy(
            "receiver-without-url",
            escalation=[{"level": 1, "after": "15m", "receiver": {"name": "oncall"}}],
        ),
        "spec.escalation[0].receiver",
    ),
    InvalidCase(
        "pagerduty receiver without routingKeySecretRef",
        "MitigationPolicy",
        _policy(
            "pagerduty-without-key",
            escalation=[
                {"level": 1, "after": "15m", "receiver": {"name": "pd", "format": "pagerduty"}}
            ],
        ),
        "spec.escalation[0].receiver",
    ),
    InvalidCase(
        "escalation level with both a webhook and a receiver",
        "MitigationPolicy",
        _policy(
            "webhook-and-receiver",
            escalation=[
                {
                    "level": 1,
                    "after": "15m",
                    "webhook": "https://hooks.example/x",
                    "receiver": {"name": "s", "urlSecretRef": {"name": "s", "key": "url"}},
                }
            ],
        ),
        "spec.escalation[0]",
    ),
]
