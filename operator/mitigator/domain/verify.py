"""The guide's recovery checklist: error rate < 0.5%, p95 < 5s, all pods ready, no firing alert.

A check without data fails: "we could not see" is never "it is fine".
"""

from collections.abc import Callable
from datetime import datetime, timedelta

from mitigator.domain.evidence import Evidence
from mitigator.domain.formatting import format_ratio_as_percent, format_seconds
from mitigator.domain.ports import describe_sample, usable_value
from mitigator.models import CheckName, VerificationCheck, VerificationCriteria, VerificationResult
from mitigator.models.evidence import MetricSample, PodHealth


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
