"""The resource models: action steps, policy pieces, wire form, and what they refuse."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from string import Template
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from mitigator.models import (
    ActionRecord,
    ActionState,
    ActionStep,
    ActionType,
    IncidentSource,
    IncidentSpec,
    IncidentStatus,
    MaintenanceAction,
    MetricKind,
    MetricQueries,
    Phase,
    PolicySpec,
    RestartAction,
    RollbackAction,
    ScaleAction,
    SetEnvAction,
    Severity,
    SeverityThresholds,
    describe_validation_error,
)
from mitigator.models.common import ENV_VAR_NAME_PATTERN
from mitigator.models.policy import DEFAULT_ERROR_RATE_QUERY, DEFAULT_P95_LATENCY_QUERY
from tests.unit.factories import incident, policy

# ---------------------------------------------------------------- action steps


@pytest.mark.parametrize(
    ("wire", "action_type", "params"),
    [
        ({"rollback": {}}, ActionType.ROLLBACK, {}),
        ({"rollback": {"toRevision": 4}}, ActionType.ROLLBACK, {"toRevision": 4}),
        ({"scale": {"increment": 2, "max": 8}}, ActionType.SCALE, {"increment": 2, "max": 8}),
        ({"restart": {}}, ActionType.RESTART, {}),
        (
            {"setEnv": {"env": {"DISABLE_WEB_SEARCH": "true"}}},
            ActionType.SET_ENV,
            {"env": {"DISABLE_WEB_SEARCH": "true"}},
        ),
        (
            {"maintenance": {"service": "web", "backendSelector": {"app": "down"}}},
            ActionType.MAINTENANCE,
            {
                "service": "web",
                "backendSelector": {"app": "down"},
                "retryAfterSeconds": 120,
                "otherServices": "switch",
            },
        ),
    ],
)
def test_action_type_and_params(
    wire: dict[str, Any], action_type: ActionType, params: dict[str, Any]
) -> None:
    step = ActionStep.model_validate(wire)
    assert step.action_type is action_type
    assert step.params == params
    assert step.step_id(3) == f"3-{action_type}"
    # The wire form round-trips; `restart: {}` is kept, not dropped as empty.
    assert ActionStep.model_validate(step.to_api_dict()) == step
    assert set(step.to_api_dict()) == {str(action_type)}


def test_a_given_step_id_wins() -> None:
    step = ActionStep.model_validate({"id": "disable-search", "setEnv": {"env": {"A": "1"}}})
    assert step.step_id(0) == "disable-search"


@pytest.mark.parametrize(
    "action",
    [
        RollbackAction(),
        ScaleAction(replicas=3),
        RestartAction(),
        SetEnvAction(env={"A": "1"}),
        MaintenanceAction(service="web", backend_selector={"app": "x"}),
    ],
)
def test_of_wraps_any_action(action: Any) -> None:
    step = ActionStep.of(action, step_id="wrapped")
    assert step.action == action
    assert step.id == "wrapped"


@pytest.mark.parametrize(
    "wire",
    [
        {},
        {"id": "a"},
        {"rollback": {}, "restart": {}},
        {"scale": {"replicas": 1}, "setEnv": {"env": {"A": "1"}}},
    ],
)
def test_a_step_needs_exactly_one_action(wire: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one of rollback, scale, restart"):
        ActionStep.model_validate(wire)


@pytest.mark.parametrize(
    ("scale", "message"),
    [
        ({}, "exactly one of replicas and increment"),
        ({"replicas": 2, "increment": 1}, "exactly one of replicas and increment"),
        ({"replicas": 5, "max": 4}, "scale.max must be >= scale.replicas"),
        ({"replicas": -1}, "greater than or equal to 0"),
        ({"increment": 0}, "greater than or equal to 1"),
        ({"increment": 1, "max": 0}, "greater than or equal to 1"),
    ],
)
def test_scale_rules(scale: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        ScaleAction.model_validate(scale)


def test_scale_max_may_equal_replicas_and_applies_to_increments() -> None:
    assert ScaleAction.model_validate({"replicas": 4, "max": 4}).max_replicas == 4
    assert ScaleAction.model_validate({"increment": 9, "max": 4}).increment == 9


@given(st.text(alphabet="AZaz09_-. $", min_size=1, max_size=12))
def test_env_names_are_checked_like_the_cel_rule(name: str) -> None:
    valid = re.fullmatch(ENV_VAR_NAME_PATTERN, name) is not None
    try:
        SetEnvAction.model_validate({"env": {name: "x"}})
    except ValidationError as refusal:
        assert not valid
        assert "valid environment variable names" in str(refusal)
    else:
        assert valid


def test_restart_takes_no_parameters() -> None:
    with pytest.raises(ValidationError):
        ActionStep.model_validate({"restart": {"force": True}})


# ---------------------------------------------------------------- wire-form fidelity


def test_nulls_mean_absent_like_the_api_server() -> None:
    spec = IncidentSpec.model_validate(
        {"target": {"name": "web"}, "dryRun": None, "source": {"labels": {"a": "1", "b": None}}}
    )
    assert spec.dry_run is False
    assert spec.source.labels == {"a": "1"}
    with pytest.raises(ValidationError, match="target"):
        IncidentSpec.model_validate({"target": None})


def test_unknown_fields_are_refused_even_when_null() -> None:
    with pytest.raises(ValidationError, match="dryrun"):
        IncidentSpec.model_validate({"target": {"name": "web"}, "dryrun": None})


@pytest.mark.parametrize(
    "spec",
    [
        {"target": {"name": "web"}, "dryRun": "true"},
        {"target": {"name": "web"}, "actions": [{"rollback": {"toRevision": "5"}}]},
        {"target": {"name": "web"}, "actions": [{"scale": {"replicas": True}}]},
        {"target": {"name": "web"}, "actions": [{"scale": {"replicas": 2.0}}]},
        {"target": {"name": "web"}, "source": {"resolvedAt": 1732631000}},
        {"target": {"name": "web"}, "source": {"resolvedAt": "2025-11-26T14:23:00"}},
        {"target": {"name": "web"}, "source": {"resolvedAt": "1732631000"}},
        {"target": {"name": "web"}, "source": {"resolvedAt": "2025-11-26 14:23:00Z"}},
        {"target": {"name": 7}},
    ],
)
def test_types_are_as_strict_as_the_schema(spec: dict[str, Any]) -> None:
    """The API server does not coerce "true" into a boolean or a number into a date."""
    with pytest.raises(ValidationError):
        IncidentSpec.model_validate(spec)


def test_numbers_accept_integers_where_the_schema_says_number() -> None:
    assert SeverityThresholds.model_validate({"p1P95Seconds": 30}).p1_p95_seconds == 30.0
    with pytest.raises(ValidationError):
        SeverityThresholds.model_validate({"p1P95Seconds": True})


def test_python_names_work_too() -> None:
    spec = IncidentSpec.model_validate(
        {"target": {"name": "web"}, "dry_run": True, "policy_ref": {"name": "p"}}
    )
    assert spec.to_api_dict()["dryRun"] is True
    assert spec.to_api_dict()["policyRef"] == {"name": "p"}


def test_specs_are_frozen() -> None:
    spec = incident()
    with pytest.raises(ValidationError):
        spec.dry_run = True  # type: ignore[misc]


def test_alert_times_keep_their_time_zone() -> None:
    source = IncidentSource.model_validate(
        {
            "type": "alertmanager",
            "alerts": [
                {
                    "fingerprint": "f1",
                    "status": "firing",
                    "startsAt": "2025-11-26T14:23:00.123456789Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                }
            ],
        }
    )
    assert source.alerts[0].starts_at == datetime(2025, 11, 26, 14, 23, 0, 123456, tzinfo=UTC)


def test_alert_fingerprints_are_unique() -> None:
    alert = {"fingerprint": "f1", "status": "firing"}
    with pytest.raises(ValidationError, match="duplicate"):
        IncidentSource.model_validate({"alerts": [alert, alert]})


# ---------------------------------------------------------------- status


def test_a_partial_status_dumps_to_a_merge_patch() -> None:
    status = IncidentStatus(phase=Phase.MITIGATING, current_step=1)
    assert status.to_api_dict() == {"phase": "Mitigating", "currentStep": 1}


def test_status_reads_what_the_server_returns_and_ignores_the_unknown() -> None:
    status = IncidentStatus.model_validate(
        {
            "phase": "Verifying",
            "actions": [
                {
                    "id": "0-scale",
                    "type": "scale",
                    "state": "Applied",
                    "params": {"increment": 2},
                    "before": {"replicas": 3, "annotation": None},
                }
            ],
            "somethingNewer": {"x": 1},
        }
    )
    (record,) = status.actions or ()
    assert record == ActionRecord(
        id="0-scale",
        type=ActionType.SCALE,
        state=ActionState.APPLIED,
        params={"increment": 2},
        before={"replicas": 3, "annotation": None},
    )


def test_status_timestamps_are_rfc3339_with_zone() -> None:
    status = IncidentStatus(detected_at=datetime(2025, 11, 26, 14, 23, tzinfo=UTC))
    assert status.to_api_dict() == {"detectedAt": "2025-11-26T14:23:00Z"}


# ---------------------------------------------------------------- enums


def test_severity_urgency_puts_unknown_between_p1_and_p2() -> None:
    ordered = sorted(Severity, key=lambda severity: severity.urgency)
    assert ordered == [Severity.P3, Severity.P2, Severity.UNKNOWN, Severity.P1, Severity.P0]
    assert not Severity.UNKNOWN.is_known and Severity.P3.is_known


def test_only_resolved_failed_and_suppressed_are_terminal() -> None:
    terminal = {phase for phase in Phase if phase.is_terminal}
    assert terminal == {Phase.RESOLVED, Phase.FAILED, Phase.SUPPRESSED}


def test_a_person_cannot_write_severity_unknown() -> None:
    with pytest.raises(ValidationError, match="severity"):
        incident(severity="Unknown")
    assert incident(severity="P2").severity is Severity.P2


# ---------------------------------------------------------------- policy


def test_policy_defaults_are_the_guides() -> None:
    spec = policy()
    assert spec.severity_thresholds == SeverityThresholds(
        p1_error_rate=0.05, p1_p95_seconds=20, p2_error_rate=0.005, p2_p95_seconds=5
    )
    assert spec.verification.max_error_rate == 0.005
    assert spec.verification.max_p95_seconds == 5
    assert spec.verification.window.total_seconds() == 30
    assert spec.verification.timeout is None
    assert spec.guardrails.cooldown.total_seconds() == 600
    assert spec.guardrails.max_replicas == 20
    assert spec.guardrails.act_on_unknown is False
    assert spec.metrics.error_rate == DEFAULT_ERROR_RATE_QUERY
    assert spec.metrics.p95_latency == DEFAULT_P95_LATENCY_QUERY


def test_render_substitutes_namespace_and_name() -> None:
    queries = MetricQueries()
    error_rate = queries.render(MetricKind.ERROR_RATE, namespace="prod", name="luminamind")
    assert error_rate == (
        '(sum(rate(luminamind_requests_total{namespace="prod",deployment="luminamind",'
        'status=~"5.."}[1m])) or vector(0)) / sum(rate(luminamind_requests_total'
        '{namespace="prod",deployment="luminamind"}[1m]))'
    )
    p95 = queries.render(MetricKind.P95_LATENCY, namespace="prod", name="luminamind")
    assert '{namespace="prod",deployment="luminamind"}' in p95
    assert "$" not in error_rate + p95


@pytest.mark.parametrize(
    ("template", "accepted"),
    [
        ('up{namespace="$namespace",deployment="$name"}', True),
        ('up{namespace="${namespace}",deployment="${name}"}', True),
        ("cost_in_$$", True),
        ("up", True),
        ("$name", True),
        ('up{deployment="$deployment"}', False),
        ('up{deployment="$names"}', False),
        ('up{deployment="$Name"}', False),
        ("price $ 5", False),
        ("${namespace", False),
    ],
)
def test_templates_may_only_use_namespace_and_name(template: str, accepted: bool) -> None:
    try:
        MetricQueries.model_validate({"errorRate": template})
    except ValidationError as refusal:
        assert not accepted
        assert "$namespace and $name" in str(refusal)
    else:
        assert accepted


@given(st.text(alphabet="$\\{}namespcN_e1 ", max_size=24))
def test_every_accepted_template_renders(template: str) -> None:
    """The CRD's regex is conservative: whatever it lets through, Template can render."""
    try:
        queries = MetricQueries.model_validate({"errorRate": template})
    except ValidationError:
        return
    rendered = queries.render(MetricKind.ERROR_RATE, namespace="ns", name="dep")
    assert rendered == Template(template).substitute(namespace="ns", name="dep")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"rules": [{"name": "a", "actions": [{"restart": {}}]}] * 2}, "rule names must be unique"),
        (
            {"escalation": [{"level": 1, "after": "15m"}, {"level": 1, "after": "1h"}]},
            "escalation levels must be unique",
        ),
        (
            {"escalation": [{"level": 2, "after": "15m"}, {"level": 1, "after": "1h"}]},
            "must fall due in level order",
        ),
        ({"escalation": [{"level": 1, "after": "2562047h"}]}, "shorter than"),
        ({"severity": {"p2P95Seconds": 30}}, "p2P95Seconds must be <= severity.p1P95Seconds"),
        (
            {
                "selector": {
                    "matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]
                }
            },
            "empty for Exists",
        ),
        ({"guardrails": {"protectedNamespaces": ["a", "a"]}}, "duplicate"),
        ({"revertOnResolve": ["scale", "scale"]}, "duplicate"),
    ],
)
def test_policy_rules(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        policy(**spec)


def test_escalation_levels_may_share_a_time_and_come_in_any_order() -> None:
    spec = policy(escalation=[{"level": 2, "after": "1h"}, {"level": 1, "after": "1h"}])
    assert [level.level for level in spec.escalation] == [2, 1]


def test_policy_round_trips_through_its_wire_form() -> None:
    spec = policy(
        escalation=[{"level": 1, "after": "15m", "webhook": "https://hooks.example/oncall"}],
        verification={"timeout": "2m"},
    )
    assert PolicySpec.model_validate(spec.to_api_dict()) == spec


# ---------------------------------------------------------------- error text


def test_describe_validation_error_names_fields_by_their_wire_names() -> None:
    with pytest.raises(ValidationError) as refusal:
        IncidentSpec.model_validate(
            {
                "target": {"name": "web"},
                "actions": [{"scale": {"replicas": 1}}, {"restart": {}, "rollback": {}}],
            }
        )
    assert describe_validation_error(refusal.value) == (
        "spec.actions[1]: exactly one of rollback, scale, restart, setEnv, maintenance, isolate "
        "must be set"
    )
    with pytest.raises(ValidationError) as refusal:
        PolicySpec.model_validate({"selector": {}, "rules": []})
    described = describe_validation_error(refusal.value, root="policy")
    assert "policy.selector: selector must not be empty" in described
    assert "policy.rules:" in described
