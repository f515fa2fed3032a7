"""The operator's pure logic: classify, plan, verify, guard, escalate, record.

No I/O and no clock: everything it needs (evidence, `now`) is passed in, so every decision
can be tested without a cluster. It imports nothing but the standard library, pydantic and
mitigator.models (import-linter holds it to that).
"""

from mitigator.domain.classify import classify, effective_severity, severity_hint_from_labels
from mitigator.domain.conditions import find_condition, set_condition
from mitigator.domain.escalation import (
    EscalationDue,
    due_escalations,
    record_notification,
    settled_levels,
)
from mitigator.domain.evidence import (
    Evidence,
    all_pods_down,
    pod_observations,
    sample_golden_signals,
)
from mitigator.domain.guardrails import (
    ALWAYS_PROTECTED,
    ALWAYS_PROTECTED_NAMESPACES,
    ReplicaCap,
    cap_replicas,
    check_action_rate,
    check_approval,
    check_concurrency,
    check_cooldown,
    check_protected_namespace,
    cooldown_refusal,
    hourly_cap_refusal,
    scale_target,
)
from mitigator.domain.plan import (
    Plan,
    PlannedStep,
    incident_alertname,
    plan_steps,
    select_rule,
)
from mitigator.domain.ports import MetricsProvider, MetricStatus, describe_sample, usable_value
from mitigator.domain.timeline import append_entry, append_timeline, timeline_entry
from mitigator.domain.verify import verify, verify_recovery, window_remaining
from mitigator.models.evidence import MetricSample, PodHealth

__all__ = [
    "ALWAYS_PROTECTED",
    "ALWAYS_PROTECTED_NAMESPACES",
    "EscalationDue",
    "Evidence",
    "MetricSample",
    "MetricStatus",
    "MetricsProvider",
    "Plan",
    "PlannedStep",
    "PodHealth",
    "ReplicaCap",
    "all_pods_down",
    "append_entry",
    "append_timeline",
    "cap_replicas",
    "check_action_rate",
    "check_approval",
    "check_concurrency",
    "check_cooldown",
    "check_protected_namespace",
    "classify",
    "cooldown_refusal",
    "describe_sample",
    "due_escalations",
    "effective_severity",
    "find_condition",
    "hourly_cap_refusal",
    "incident_alertname",
    "plan_steps",
    "pod_observations",
    "record_notification",
    "sample_golden_signals",
    "scale_target",
    "select_rule",
    "set_condition",
    "settled_levels",
    "severity_hint_from_labels",
    "timeline_entry",
    "usable_value",
    "verify",
    "verify_recovery",
    "window_remaining",
]
