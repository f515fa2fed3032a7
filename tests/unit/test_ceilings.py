"""Operator-wide ceilings: a policy naming a Prometheus or webhook the operator does not allow,
more replicas than its ceiling, or living in a namespace it never touches is Invalid, with the
reason (and the URL's secret parts are never quoted)."""

from __future__ import annotations

from typing import Any

from mitigator.domain.ceilings import Ceilings
from mitigator.domain.selection import policy_candidate

CEILINGS = Ceilings(
    allowed_prometheus_urls=("https://prom-*.monitoring.svc:9090",),
    default_prometheus_url="http://prometheus.monitoring.svc:9090",
    allowed_webhook_hosts=("hooks.slack.com", "*.pagerduty.com"),
    max_replicas=50,
    protected_namespaces=("kube-system", "payments-*"),
)


def _spec(**extra: Any) -> dict[str, Any]:
    return {
        "selector": {"matchLabels": {"app": "web"}},
        "rules": [{"name": "any", "actions": [{"restart": {}}]}],
        **extra,
    }


def _reason(spec: dict[str, Any], namespace: str = "shop") -> str | None:
    candidate = policy_candidate("p", spec, namespace=namespace, ceilings=CEILINGS)
    assert (candidate.spec is None) == candidate.not_allowed
    return candidate.invalid_reason


def test_within_the_ceilings_is_valid() -> None:
    assert _reason(_spec()) is None
    assert (
        _reason(_spec(metrics={"prometheusURL": "http://prometheus.monitoring.svc:9090/"})) is None
    )
    assert _reason(_spec(metrics={"prometheusURL": "https://prom-eu.monitoring.svc:9090"})) is None
    level = {"after": "0s", "level": 1, "webhook": "https://events.pagerduty.com/v2/enqueue"}
    assert _reason(_spec(escalation=[level], guardrails={"maxReplicas": 50})) is None


def test_each_ceiling_makes_a_policy_invalid_with_the_reason() -> None:
    inside = _spec(metrics={"prometheusURL": "http://10.0.0.5:8080/admin"})
    assert "metrics.prometheusURL http://10.0.0.5:8080/admin is not allowed" in str(_reason(inside))
    hook = {"after": "0s", "level": 2, "webhook": "http://metadata.internal/T0/B0/secret-token"}
    reason = str(_reason(_spec(escalation=[hook])))
    assert "escalation level 2 webhook: host metadata.internal is not allowed" in reason
    assert "secret-token" not in reason
    assert "above the operator's ceiling of 50" in str(
        _reason(_spec(guardrails={"maxReplicas": 51}))
    )
    assert "namespace payments-eu is protected" in str(_reason(_spec(), namespace="payments-eu"))


def test_an_unset_max_replicas_is_brought_under_the_ceiling_not_refused() -> None:
    low = Ceilings(max_replicas=8)
    candidate = policy_candidate("p", _spec(), namespace="a", ceilings=low)
    assert candidate.spec is not None and candidate.spec.guardrails.max_replicas == 8
    explicit = _spec(guardrails={"maxReplicas": 20})
    assert policy_candidate("p", explicit, namespace="a", ceilings=low).not_allowed


def test_no_allowlist_means_only_the_default_prometheus_and_no_webhook() -> None:
    closed = Ceilings(default_prometheus_url="http://prom:9090")
    spec = _spec(metrics={"prometheusURL": "http://elsewhere:9090"})
    assert policy_candidate("p", spec, namespace="a", ceilings=closed).not_allowed
    hook = {"after": "0s", "level": 1, "webhook": "https://hooks.slack.com/x"}
    assert policy_candidate(
        "p", _spec(escalation=[hook]), namespace="a", ceilings=closed
    ).not_allowed
    anything = Ceilings(allowed_prometheus_urls=("*",), allowed_webhook_hosts=("*",))
    both = _spec(metrics={"prometheusURL": "http://elsewhere:9090"}, escalation=[hook])
    assert policy_candidate("p", both, namespace="a", ceilings=anything).spec is not None
