"""Classification: the guide's decision tree, and missing evidence is never healthy."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mitigator.domain.classify import classify, effective_severity, severity_hint_from_labels
from mitigator.domain.evidence import Evidence
from mitigator.models import Classification, Severity, SeverityThresholds
from mitigator.models.evidence import MetricSample, PodHealth
from tests.unit.factories import NOW, evidence

GUIDE = SeverityThresholds()
NO_DATA = MetricSample.no_data("the query returned no samples")
UNREACHABLE = MetricSample.unreachable("connection refused")


def severity_of(sample_evidence: Evidence) -> Severity:
    return classify(sample_evidence, thresholds=GUIDE).severity


# ---------------------------------------------------------------- the decision tree


@pytest.mark.parametrize(
    ("case", "expected", "reason"),
    [
        (evidence(ready=0), Severity.P0, "0/3 pods ready"),
        (evidence(ready=1, crash_looping=3), Severity.P0, "all 3 pods in CrashLoopBackOff"),
        (evidence(labels={"category": "data-loss"}), Severity.P0, "label category=data-loss"),
        (evidence(labels={"category": "Security"}), Severity.P0, "label category=security"),
        (evidence(labels={"category": "data_loss"}), Severity.P0, "label category=data-loss"),
        (evidence(labels={"data_loss": "true"}), Severity.P0, "label data_loss=true"),
        (evidence(labels={"security": "True"}), Severity.P0, "label security=true"),
        (evidence(error_rate=0.123), Severity.P1, "error rate 12.3% > 5%"),
        (evidence(p95=25.0), Severity.P1, "p95 latency 25s > 20s"),
        (evidence(p95=math.inf), Severity.P1, "p95 latency +Inf s > 20s"),
        (evidence(error_rate=0.01), Severity.P2, "error rate 1% > 0.5%"),
        (evidence(p95=7.5), Severity.P2, "p95 latency 7.5s > 5s"),
        (evidence(ready=2), Severity.P2, "2/3 pods ready"),
        (evidence(crash_looping=1), Severity.P2, "1 pod(s) in CrashLoopBackOff"),
        (evidence(oom_killed=2), Severity.P2, "2 pod(s) OOMKilled"),
        (evidence(), Severity.P3, "error rate 0.1% <= 0.5%"),
    ],
)
def test_decision_tree(case: Evidence, expected: Severity, reason: str) -> None:
    result = classify(case, thresholds=GUIDE, now=NOW)
    assert result.severity is expected
    assert reason in result.reasons
    assert result.evidence_complete
    assert result.at == NOW


def test_thresholds_are_strict() -> None:
    assert severity_of(evidence(error_rate=0.05)) is Severity.P2
    assert severity_of(evidence(error_rate=0.005)) is Severity.P3
    assert severity_of(evidence(p95=20.0)) is Severity.P2
    assert severity_of(evidence(p95=5.0)) is Severity.P3


def test_thresholds_come_from_the_policy() -> None:
    strict = SeverityThresholds(p1_error_rate=0.01, p2_error_rate=0.001)
    assert classify(evidence(error_rate=0.02), thresholds=strict).severity is Severity.P1


def test_healthy_reasons_quote_every_number() -> None:
    result = classify(evidence(error_rate=0.001, p95=1.234), thresholds=GUIDE)
    assert result.reasons == (
        "error rate 0.1% <= 0.5%",
        "p95 latency 1.23s <= 5s",
        "3/3 pods ready",
    )


def test_zero_desired_replicas_is_not_down() -> None:
    assert severity_of(evidence(desired=0, ready=0)) is Severity.P3


def test_observed_records_the_raw_evidence() -> None:
    result = classify(evidence(error_rate=0.2, p95=NO_DATA), thresholds=GUIDE)
    assert result.observed["errorRate"] == {"value": 0.2, "status": "ok", "detail": ""}
    assert result.observed["p95Seconds"] == {
        "value": None,
        "status": "no_data",
        "detail": "the query returned no samples",
    }
    assert result.observed["pods"] == {
        "desired": 3,
        "ready": 3,
        "crashLooping": 0,
        "oomKilled": 0,
        "restarts": 0,
        "rolloutInProgress": False,
    }
    assert result.observed["thresholds"] == GUIDE.to_api_dict()
    # It is what goes into the status: valid JSON, infinity included.
    Classification.model_validate_json(
        classify(evidence(p95=math.inf), thresholds=GUIDE).model_dump_json()
    )


# ---------------------------------------------------------------- missing evidence


@pytest.mark.parametrize("missing", [NO_DATA, UNREACHABLE, MetricSample.error("bad query")])
def test_missing_metric_turns_healthy_into_unknown(missing: MetricSample) -> None:
    result = classify(evidence(error_rate=missing), thresholds=GUIDE)
    assert result.severity is Severity.UNKNOWN
    assert not result.evidence_complete
    assert any(
        reason.startswith(f"error rate unknown: {missing.status}") for reason in result.reasons
    )


def test_missing_metric_turns_degraded_into_unknown_keeping_the_reasons() -> None:
    result = classify(evidence(p95=UNREACHABLE, ready=2), thresholds=GUIDE)
    assert result.severity is Severity.UNKNOWN
    assert result.reasons == (
        "2/3 pods ready",
        "p95 latency unknown: unreachable (connection refused)",
    )


def test_proven_p0_and_p1_stand_without_the_other_metric() -> None:
    down = classify(evidence(ready=0, error_rate=NO_DATA, p95=NO_DATA), thresholds=GUIDE)
    assert down.severity is Severity.P0 and not down.evidence_complete
    slow = classify(evidence(p95=30.0, error_rate=UNREACHABLE), thresholds=GUIDE)
    assert slow.severity is Severity.P1 and not slow.evidence_complete
    assert "error rate unknown: unreachable (connection refused)" in slow.reasons


def test_an_ok_nan_is_treated_as_no_data() -> None:
    nan = MetricSample("ok", math.nan)
    assert severity_of(evidence(error_rate=nan)) is Severity.UNKNOWN


# ---------------------------------------------------------------- properties

samples = st.one_of(
    st.floats(min_value=0, max_value=1).map(MetricSample.ok),
    st.sampled_from([NO_DATA, UNREACHABLE, MetricSample.error("x")]),
)
latencies = st.one_of(
    st.floats(min_value=0, max_value=120).map(MetricSample.ok),
    st.sampled_from([NO_DATA, UNREACHABLE]),
)


@st.composite
def evidences(draw: st.DrawFn) -> Evidence:
    desired = draw(st.integers(min_value=0, max_value=10))
    return Evidence(
        error_rate=draw(samples),
        p95_seconds=draw(latencies),
        pods=PodHealth(
            desired=desired,
            ready=draw(st.integers(min_value=0, max_value=desired)),
            crash_looping=draw(st.integers(min_value=0, max_value=desired)),
            oom_killed=draw(st.integers(min_value=0, max_value=desired)),
        ),
        labels=draw(st.sampled_from([{}, {"category": "security"}, {"team": "x"}])),
    )


def _worse(sample: MetricSample, extra: float) -> MetricSample:
    return MetricSample.ok(sample.value + extra) if sample.value is not None else sample


@given(
    base=evidences(),
    more_errors=st.floats(min_value=0, max_value=1),
    more_latency=st.floats(min_value=0, max_value=60),
    fewer_ready=st.integers(min_value=0, max_value=10),
    more_crashes=st.integers(min_value=0, max_value=10),
    more_ooms=st.integers(min_value=0, max_value=10),
)
def test_worse_evidence_never_lowers_severity(
    *,
    base: Evidence,
    more_errors: float,
    more_latency: float,
    fewer_ready: int,
    more_crashes: int,
    more_ooms: int,
) -> None:
    pods = base.pods
    worse = Evidence(
        error_rate=_worse(base.error_rate, more_errors),
        p95_seconds=_worse(base.p95_seconds, more_latency),
        pods=PodHealth(
            desired=pods.desired,
            ready=max(pods.ready - fewer_ready, 0),
            crash_looping=pods.crash_looping + more_crashes,
            oom_killed=pods.oom_killed + more_ooms,
        ),
        labels=base.labels,
    )
    assert severity_of(worse).urgency >= severity_of(base).urgency


@given(evidences())
def test_missing_metrics_never_yield_p3_or_p2(case: Evidence) -> None:
    assume(case.error_rate.status != "ok" or case.p95_seconds.status != "ok")
    result = classify(case, thresholds=GUIDE)
    assert result.severity not in (Severity.P2, Severity.P3)
    assert not result.evidence_complete


@given(evidences())
def test_losing_a_metric_never_makes_things_look_better(case: Evidence) -> None:
    blind = Evidence(
        error_rate=NO_DATA, p95_seconds=case.p95_seconds, pods=case.pods, labels=case.labels
    )
    assert severity_of(blind).urgency >= min(severity_of(case).urgency, Severity.UNKNOWN.urgency)


@given(evidences())
def test_every_verdict_has_reasons(case: Evidence) -> None:
    assert classify(case, thresholds=GUIDE).reasons


# ---------------------------------------------------------------- effective severity


def _classified(severity: Severity) -> Classification:
    return Classification(severity=severity, evidence_complete=severity.is_known)


def test_the_spec_severity_wins() -> None:
    assert effective_severity(Severity.P3, _classified(Severity.P0)) is Severity.P3


def test_the_classification_otherwise() -> None:
    assert (
        effective_severity(None, _classified(Severity.P1), alert_severity_hint=Severity.P3)
        is Severity.P1
    )


def test_unknown_takes_the_alerts_word_only_if_the_policy_says_so() -> None:
    unknown = _classified(Severity.UNKNOWN)
    assert effective_severity(None, unknown, alert_severity_hint=Severity.P1) is Severity.UNKNOWN
    assert (
        effective_severity(None, unknown, alert_severity_hint=Severity.P1, act_on_unknown=True)
        is Severity.P1
    )
    assert effective_severity(None, unknown, act_on_unknown=True) is Severity.UNKNOWN


@pytest.mark.parametrize(
    ("labels", "hint"),
    [
        ({"severity": "critical"}, Severity.P1),
        ({"severity": "P0"}, Severity.P0),
        ({"severity": "p2"}, Severity.P2),
        ({"severity": "warning"}, Severity.P2),
        ({"severity": "info"}, Severity.P3),
        ({"priority": "P1"}, Severity.P1),
        ({"severity": "whatever"}, None),
        ({}, None),
    ],
)
def test_severity_hint_from_alert_labels(labels: dict[str, str], hint: Severity | None) -> None:
    assert severity_hint_from_labels(labels) == hint
