"""The guide's recovery checklist: error rate < 0.5%, p95 < 5s, all pods ready, no firing alert.

A check without data fails: "we could not see" is never "it is fine".

The checklist runs on every tick of a verification window, but its result is worth a status
write (a watch event for every watcher of Incidents) only when it says something new: see
`worth_recording`.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import get_args

from mitigator.domain.evidence import Evidence
from mitigator.domain.formatting import format_ratio_as_percent, format_seconds
from mitigator.domain.ports import describe_sample, usable_value
from mitigator.models import CheckName, VerificationCheck, VerificationCriteria, VerificationResult
from mitigator.models.evidence import MetricSample, PodHealth, SampleStatus

# How often the observed values of a window in which nothing else changed are written anyway,
# so the status never looks frozen for long (MITIGATOR_VERIFICATION_REFRESH_SECONDS).
DEFAULT_REFRESH = timedelta(seconds=30)
# How a check says it had no evidence: the sample's status (describe_sample) or, for the
# alerts, "unknown". A number, a pod count or an alert count never starts with one of these.
_MISSING = frozenset(status for status in get_args(SampleStatus) if status != "ok") | {"unknown"}


def verify_recovery(
    evidence: Evidence,
    *,
    criteria: VerificationCriteria,
    firing_alerts: int | None,
    now: datetime,
    window_started_at: datetime,
) -> VerificationResult:
    """Run the checklist once against `evidence`.

    `firing_alerts` is how many alerts for the target are still firing, None when that is not
    known (which fails the check).
    """
    checks = [
        _below(
            CheckName.ERROR_RATE,
            evidence.error_rate,
            label="error rate",
            limit=criteria.max_error_rate,
            render=format_ratio_as_percent,
        ),
        _below(
            CheckName.P95_LATENCY,
            evidence.p95_seconds,
            label="p95 latency",
            limit=criteria.max_p95_seconds,
            render=format_seconds,
        ),
    ]
    if criteria.require_all_pods_ready:
        checks.append(_pods(evidence.pods))
    if criteria.require_no_firing_alerts:
        checks.append(_no_firing_alerts(firing_alerts))
    return VerificationResult(
        checks=tuple(checks),
        passed=all(check.passed for check in checks),
        at=now,
        window_started_at=window_started_at,
    )


def window_remaining(*, window_started_at: datetime, window: timedelta, now: datetime) -> timedelta:
    """How much longer the checks must hold before the verification window is over (0 once
    it is)."""
    return max(window_started_at + window - now, timedelta())


def missing_evidence(check: VerificationCheck) -> str | None:
    """Why `check` had nothing to judge ("unreachable", "no_data", "error", "unknown"), or
    None when it had evidence (passing or failing on it)."""
    if check.observed is None:
        return "unknown"
    word = check.observed.split(" ", 1)[0]
    return word if word in _MISSING else None


def worth_recording(
    recorded: VerificationResult | None,
    result: VerificationResult,
    *,
    refresh: timedelta,
) -> bool:
    """Whether `result` (this tick's checklist) says something a user relies on that the
    `recorded` one (in the status) does not: the window started, the verdict of a check or of
    the whole changed, a check lost its evidence (or found it again, or lost it another way),
    the checks or their thresholds changed; or the recorded values are `refresh` old. A window
    in which nothing changes is then written once per `refresh`, not once per tick; the
    verdict that ends it is written by the caller whatever this says."""
    if recorded is None or recorded.at is None or result.at is None:
        return True
    if recorded.window_started_at != result.window_started_at:
        return True
    if recorded.passed != result.passed or _verdicts(recorded) != _verdicts(result):
        return True
    return result.at - recorded.at >= refresh


def _verdicts(result: VerificationResult) -> tuple[tuple[str, bool, str | None, str | None], ...]:
    return tuple(
        (check.name, check.passed, check.threshold, missing_evidence(check))
        for check in result.checks
    )


def _below(
    name: CheckName,
    sample: MetricSample,
    *,
    label: str,
    limit: float,
    render: Callable[[float], str],
) -> VerificationCheck:
    threshold = f"< {render(limit)}"
    value = usable_value(sample)
    if value is None:
        return VerificationCheck(
            name=name,
            passed=False,
            observed=describe_sample(sample),
            threshold=threshold,
            message=f"{label} unknown: {describe_sample(sample)}",
        )
    passed = value < limit
    return VerificationCheck(
        name=name,
        passed=passed,
        observed=render(value),
        threshold=threshold,
        message=None if passed else f"{label} {render(value)} is not {threshold}",
    )


def _pods(pods: PodHealth) -> VerificationCheck:
    observed = f"{pods.ready}/{pods.desired} ready"
    if pods.rollout_in_progress:
        observed += ", rollout in progress"
    # Pods counted in the middle of a rollout say nothing about the new template yet.
    passed = pods.desired > 0 and pods.ready >= pods.desired and not pods.rollout_in_progress
    message = None
    if pods.desired == 0:
        message = "the target has 0 desired replicas"
    elif pods.ready < pods.desired:
        message = f"only {pods.ready} of {pods.desired} pods ready"
    elif pods.rollout_in_progress:
        message = "the rollout is still in progress"
    return VerificationCheck(
        name=CheckName.PODS_READY,
        passed=passed,
        observed=observed,
        threshold="all ready",
        message=message,
    )


def _no_firing_alerts(firing_alerts: int | None) -> VerificationCheck:
    if firing_alerts is None:
        return VerificationCheck(
            name=CheckName.NO_FIRING_ALERTS,
            passed=False,
            observed="unknown",
            threshold="0",
            message="could not tell whether alerts for the target are still firing",
        )
    passed = firing_alerts == 0
    return VerificationCheck(
        name=CheckName.NO_FIRING_ALERTS,
        passed=passed,
        observed=str(firing_alerts),
        threshold="0",
        message=None if passed else f"{firing_alerts} alert(s) for the target still firing",
    )
