"""Verification: the recovery checklist, and no data never passes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mitigator.domain.evidence import Evidence
from mitigator.domain.ports import usable_value
from mitigator.domain.verify import (
    missing_evidence,
    verify_recovery,
    window_remaining,
    worth_recording,
)
from mitigator.models import CheckName, VerificationCriteria, VerificationResult
from mitigator.models.evidence import MetricSample, PodHealth
from tests.unit.factories import NOW, evidence

GUIDE = VerificationCriteria()


def _verify(observed: Evidence, **arguments: Any) -> VerificationResult:
    arguments.setdefault("now", NOW)
    arguments.setdefault("window_started_at", NOW)
    return verify_recovery(observed, **arguments)


def checks(result: VerificationResult) -> dict[str, tuple[bool, str | None, str | None]]:
    return {check.name: (check.passed, check.observed, check.threshold) for check in result.checks}


def test_a_recovered_target_passes_every_check() -> None:
    result = _verify(evidence(error_rate=0.001, p95=1.2), criteria=GUIDE, firing_alerts=0, now=NOW)
    assert result.passed and result.at == NOW
    assert checks(result) == {
        CheckName.ERROR_RATE: (True, "0.1%", "< 0.5%"),
        CheckName.P95_LATENCY: (True, "1.2s", "< 5s"),
        CheckName.PODS_READY: (True, "3/3 ready", "all ready"),
        CheckName.NO_FIRING_ALERTS: (True, "0", "0"),
    }
    assert all(check.message is None for check in result.checks)


@pytest.mark.parametrize(
    ("case", "firing", "failing", "message"),
    [
        (evidence(error_rate=0.005), 0, CheckName.ERROR_RATE, "error rate 0.5% is not < 0.5%"),
        (evidence(p95=5.0), 0, CheckName.P95_LATENCY, "p95 latency 5s is not < 5s"),
        (evidence(ready=2), 0, CheckName.PODS_READY, "only 2 of 3 pods ready"),
        (evidence(desired=0), 0, CheckName.PODS_READY, "the target has 0 desired replicas"),
        (
            evidence(rollout_in_progress=True),
            0,
            CheckName.PODS_READY,
            "the rollout is still in progress",
        ),
        (evidence(), 2, CheckName.NO_FIRING_ALERTS, "2 alert(s) for the target still firing"),
        (
            evidence(),
            None,
            CheckName.NO_FIRING_ALERTS,
            "could not tell whether alerts for the target are still firing",
        ),
        (
            evidence(error_rate=MetricSample.unreachable("connection refused")),
            0,
            CheckName.ERROR_RATE,
            "error rate unknown: unreachable (connection refused)",
        ),
        (
            evidence(p95=MetricSample.no_data("NaN (no traffic)")),
            0,
            CheckName.P95_LATENCY,
            "p95 latency unknown: no_data (NaN (no traffic))",
        ),
    ],
)
def test_each_check_fails_on_its_own(
    case: Evidence, firing: int | None, failing: CheckName, message: str
) -> None:
    result = _verify(case, criteria=GUIDE, firing_alerts=firing)
    assert not result.passed
    failed = [check for check in result.checks if not check.passed]
    assert [check.name for check in failed] == [failing]
    assert failed[0].message == message


def test_checks_the_policy_does_not_require_are_left_out() -> None:
    relaxed = VerificationCriteria(require_all_pods_ready=False, require_no_firing_alerts=False)
    result = _verify(evidence(ready=1), criteria=relaxed, firing_alerts=None)
    assert result.passed
    assert [check.name for check in result.checks] == [CheckName.ERROR_RATE, CheckName.P95_LATENCY]


def test_window_remaining() -> None:
    window = timedelta(seconds=30)
    assert window_remaining(window_started_at=NOW, window=window, now=NOW) == window
    later = NOW + timedelta(seconds=20)
    assert window_remaining(window_started_at=NOW, window=window, now=later) == timedelta(
        seconds=10
    )
    much_later = NOW + timedelta(minutes=5)
    assert window_remaining(window_started_at=NOW, window=window, now=much_later) == timedelta()


missing = st.sampled_from(
    [MetricSample.no_data("none"), MetricSample.unreachable("down"), MetricSample.error("bad")]
)
any_sample = st.one_of(missing, st.floats(min_value=0, max_value=100).map(MetricSample.ok))


@given(
    error_rate=any_sample,
    p95=any_sample,
    desired=st.integers(min_value=0, max_value=5),
    ready=st.integers(min_value=0, max_value=5),
    firing=st.one_of(st.none(), st.integers(min_value=0, max_value=3)),
    require_pods=st.booleans(),
    require_alerts=st.booleans(),
)
def test_verification_never_passes_without_data(
    *,
    error_rate: MetricSample,
    p95: MetricSample,
    desired: int,
    ready: int,
    firing: int | None,
    require_pods: bool,
    require_alerts: bool,
) -> None:
    result = _verify(
        Evidence(
            error_rate=error_rate, p95_seconds=p95, pods=PodHealth(desired=desired, ready=ready)
        ),
        criteria=VerificationCriteria(
            require_all_pods_ready=require_pods, require_no_firing_alerts=require_alerts
        ),
        firing_alerts=firing,
    )
    blind = error_rate.status != "ok" or p95.status != "ok" or (require_alerts and firing is None)
    if blind:
        assert not result.passed
    assert result.passed == all(check.passed for check in result.checks)


@given(
    error_rate=st.one_of(any_sample, st.just(MetricSample.ok(float("nan")))),
    p95=st.one_of(any_sample, st.just(MetricSample.ok(float("inf")))),
    firing=st.one_of(st.none(), st.integers(min_value=0, max_value=3)),
    ready=st.integers(min_value=0, max_value=3),
)
def test_each_check_says_whether_it_had_evidence(
    *, error_rate: MetricSample, p95: MetricSample, firing: int | None, ready: int
) -> None:
    """What decides that a check that lost its evidence is written at once."""
    result = _verify(
        evidence(error_rate=error_rate, p95=p95, ready=ready), criteria=GUIDE, firing_alerts=firing
    )
    missing = {check.name: missing_evidence(check) for check in result.checks}
    assert (missing[CheckName.ERROR_RATE] is None) == (usable_value(error_rate) is not None)
    assert (missing[CheckName.P95_LATENCY] is None) == (usable_value(p95) is not None)
    assert (missing[CheckName.NO_FIRING_ALERTS] is None) == (firing is not None)
    assert missing[CheckName.PODS_READY] is None


def test_a_result_is_worth_recording_when_it_says_something_new() -> None:
    refresh = timedelta(seconds=30)
    recorded = _verify(evidence(p95=1.0), criteria=GUIDE, firing_alerts=0)
    later = NOW + timedelta(seconds=10)

    def new(observed: Evidence, criteria: VerificationCriteria = GUIDE, **kw: Any) -> bool:
        result = _verify(observed, criteria=criteria, firing_alerts=kw.pop("firing", 0), now=later)
        return worth_recording(recorded, result, refresh=kw.pop("refresh", refresh))

    assert not new(evidence(p95=2.0))  # another value, the same verdicts
    assert new(evidence(p95=2.0), refresh=timedelta(seconds=10))  # ...but the refresh is due
    assert new(evidence(p95=2.0), refresh=timedelta())  # 0: every tick, as before
    assert new(evidence(p95=9.0))  # a verdict changed
    assert new(evidence(), firing=None)  # evidence lost
    assert new(evidence(), VerificationCriteria(max_p95_seconds=2))  # another threshold
    assert new(evidence(), VerificationCriteria(require_no_firing_alerts=False))  # other checks
    assert worth_recording(None, recorded, refresh=refresh)
    moved = recorded.model_copy(update={"window_started_at": later})
    assert worth_recording(recorded, moved, refresh=refresh)  # a window (re)opened
