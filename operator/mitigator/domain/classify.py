"""Severity from evidence: the incident response guide's decision tree.

    all pods down, data loss or security        → P0
    error rate > 5% or p95 > 20s                → P1
    degraded (> 0.5%, > 5s, pods not all ready,
              CrashLoopBackOff or OOMKilled)    → P2
    otherwise                                   → P3

Missing evidence is never healthy: when a metric has no data or Prometheus cannot be reached,
a verdict of P2 or P3 cannot be trusted (the missing number might have made it a P1), so the
severity is Unknown. A P0 or P1 proven from the evidence that is there stands.
"""

import math
from collections.abc import Callable, Mapping
from datetime import datetime

from mitigator.domain.evidence import Evidence, all_pods_down, pod_observations
from mitigator.domain.formatting import format_ratio_as_percent, format_seconds
from mitigator.domain.ports import describe_sample, usable_value
from mitigator.models import Classification, JsonObject, Severity, SeverityThresholds
from mitigator.models.evidence import MetricSample

# Alert or incident labels that make an incident a P0 whatever the metrics say.
P0_CATEGORIES = frozenset({"data-loss", "security"})
P0_FLAG_LABELS = ("data_loss", "security")

# Severity labels alert rules commonly carry, mapped to the guide's levels. "critical" pages,
# which the guide reserves for P0/P1; a P0 needs proof (all pods down), so critical is P1.
_SEVERITY_LABEL_VALUES = {
    "p0": Severity.P0,
    "p1": Severity.P1,
    "p2": Severity.P2,
    "p3": Severity.P3,
    "critical": Severity.P1,
    "page": Severity.P1,
    "error": Severity.P2,
    "warning": Severity.P2,
    "info": Severity.P3,
    "none": Severity.P3,
}


def classify(
    evidence: Evidence, *, thresholds: SeverityThresholds, now: datetime | None = None
) -> Classification:
    """The severity the evidence justifies, with reasons that quote the numbers."""
    p0_reasons = [*_down_reasons(evidence), *_label_reasons(evidence.labels)]
    p1_reasons = _metric_reasons(
        evidence,
        error_rate_limit=thresholds.p1_error_rate,
        p95_limit=thresholds.p1_p95_seconds,
    )
    p2_reasons = [
        *_metric_reasons(
            evidence,
            error_rate_limit=thresholds.p2_error_rate,
            p95_limit=thresholds.p2_p95_seconds,
        ),
        *_pod_degradation_reasons(evidence),
    ]
    missing_reasons = [
        f"{label} unknown: {describe_sample(sample)}"
        for label, sample in (
            ("error rate", evidence.error_rate),
            ("p95 latency", evidence.p95_seconds),
        )
        if usable_value(sample) is None
    ]

    if p0_reasons:
        severity, reasons = Severity.P0, p0_reasons
    elif p1_reasons:
        severity, reasons = Severity.P1, p1_reasons
    elif missing_reasons:
        severity, reasons = Severity.UNKNOWN, p2_reasons
    elif p2_reasons:
        severity, reasons = Severity.P2, p2_reasons
    else:
        severity, reasons = Severity.P3, _healthy_reasons(evidence, thresholds)

    return Classification(
        severity=severity,
        reasons=(*reasons, *missing_reasons),
        observed=_observed(evidence, thresholds),
        evidence_complete=not missing_reasons,
        at=now,
    )


def effective_severity(
    spec_severity: Severity | None,
    classification: Classification,
    *,
    alert_severity_hint: Severity | None = None,
    act_on_unknown: bool = False,
) -> Severity:
    """The severity the operator acts on.

    A severity a person (or the bridge) wrote in the spec wins. Otherwise the classification,
    unless it is Unknown: then the alert's own severity, but only if the policy says to act on
    incomplete evidence (guardrails.actOnUnknown); otherwise Unknown, and people decide.
    """
    if spec_severity is not None:
        return spec_severity
    if classification.severity.is_known:
        return classification.severity
    if act_on_unknown and alert_severity_hint is not None and alert_severity_hint.is_known:
        return alert_severity_hint
    return Severity.UNKNOWN


def severity_hint_from_labels(labels: Mapping[str, str]) -> Severity | None:
    """The severity an alert claims through its `severity` (or `priority`) label, if any:
    P0..P3 as such, critical/page → P1, error/warning → P2, info/none → P3."""
    for key in ("severity", "priority"):
        value = labels.get(key)
        if value is not None and value.strip().lower() in _SEVERITY_LABEL_VALUES:
            return _SEVERITY_LABEL_VALUES[value.strip().lower()]
    return None


def _down_reasons(evidence: Evidence) -> list[str]:
    pods = evidence.pods
    reasons = []
    if pods.desired > 0 and pods.ready == 0:
        reasons.append(f"0/{pods.desired} pods ready")
    if all_pods_down(pods) and pods.crash_looping:
        reasons.append(f"all {pods.desired} pods in CrashLoopBackOff")
    return reasons


def _label_reasons(labels: Mapping[str, str]) -> list[str]:
    reasons = []
    # "data_loss" and "data-loss" are both written in the wild.
    category = labels.get("category", "").strip().lower().replace("_", "-")
    if category in P0_CATEGORIES:
        reasons.append(f"label category={category}")
    reasons.extend(
        f"label {flag}=true"
        for flag in P0_FLAG_LABELS
        if labels.get(flag, "").strip().lower() == "true"
    )
    return reasons


def _metric_reasons(evidence: Evidence, *, error_rate_limit: float, p95_limit: float) -> list[str]:
    reasons = []
    error_rate = _value_above(evidence.error_rate, error_rate_limit)
    if error_rate is not None:
        reasons.append(
            f"error rate {format_ratio_as_percent(error_rate)} > "
            f"{format_ratio_as_percent(error_rate_limit)}"
        )
    p95 = _value_above(evidence.p95_seconds, p95_limit)
    if p95 is not None:
        reasons.append(f"p95 latency {format_seconds(p95)} > {format_seconds(p95_limit)}")
    return reasons


def _pod_degradation_reasons(evidence: Evidence) -> list[str]:
    pods = evidence.pods
    reasons = []
    if pods.ready < pods.desired:
        reasons.append(f"{pods.ready}/{pods.desired} pods ready")
    if pods.crash_looping:
        reasons.append(f"{pods.crash_looping} pod(s) in CrashLoopBackOff")
    if pods.oom_killed:
        reasons.append(f"{pods.oom_killed} pod(s) OOMKilled")
    return reasons


def _healthy_reasons(evidence: Evidence, thresholds: SeverityThresholds) -> list[str]:
    # Only reached with both metrics available and nothing degraded; a missing value is still
    # named as missing, never shown as a zero.
    return [
        f"error rate {_shown(evidence.error_rate, format_ratio_as_percent)} <= "
        f"{format_ratio_as_percent(thresholds.p2_error_rate)}",
        f"p95 latency {_shown(evidence.p95_seconds, format_seconds)} <= "
        f"{format_seconds(thresholds.p2_p95_seconds)}",
        f"{evidence.pods.ready}/{evidence.pods.desired} pods ready",
    ]


def _shown(sample: MetricSample, render: Callable[[float], str]) -> str:
    value = usable_value(sample)
    return render(value) if value is not None else describe_sample(sample)


def _value_above(sample: MetricSample, limit: float) -> float | None:
    value = usable_value(sample)
    return value if value is not None and value > limit else None


def _observed(evidence: Evidence, thresholds: SeverityThresholds) -> JsonObject:
    def sample(metric: MetricSample) -> JsonObject:
        # JSON has no infinity; a +Inf p95 (every request in the top bucket) is recorded as a
        # string so the status stays valid JSON.
        number = usable_value(metric)
        value: float | str | None = number
        if number is not None and math.isinf(number):
            value = str(number)
        return {"value": value, "status": metric.status, "detail": metric.detail}

    return {
        "errorRate": sample(evidence.error_rate),
        "p95Seconds": sample(evidence.p95_seconds),
        "pods": dict(pod_observations(evidence.pods)),
        "labels": dict(evidence.labels),
        "thresholds": thresholds.to_api_dict(),
    }
