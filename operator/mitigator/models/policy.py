"""The spec of a MitigationPolicy: which Deployments it covers and how to rescue them.

Defaults are the incident response guide's numbers; error messages are the CRD's CEL messages.
"""

import re
from datetime import timedelta
from enum import StrEnum
from itertools import pairwise
from string import Template
from typing import Annotated

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from mitigator.models.actions import ActionSteps
from mitigator.models.base import ApiModel
from mitigator.models.common import (
    DNS1123_LABEL_PATTERN,
    DNS1123_SUBDOMAIN_PATTERN,
    HTTP_URL_PATTERN,
    ActionType,
    Duration,
    RevertibleActionType,
    Severity,
    reject_duplicates,
)
from mitigator.models.gitops import GitOpsMode
from mitigator.models.selector import LabelSelector

PROMETHEUS_URL_INVALID = "prometheusURL must be an http:// or https:// URL"
WEBHOOK_URL_INVALID = "webhook must be an http:// or https:// URL"
TEMPLATE_PLACEHOLDERS_INVALID = (
    "a metrics template may only use the placeholders $namespace and $name "
    "(write $$ for a literal $)"
)
P2_ERROR_RATE_ABOVE_P1 = "severity.p2ErrorRate must be <= severity.p1ErrorRate"
P2_P95_ABOVE_P1 = "severity.p2P95Seconds must be <= severity.p1P95Seconds"
RULE_NAMES_NOT_UNIQUE = "rule names must be unique"
ESCALATION_LEVELS_NOT_UNIQUE = "escalation levels must be unique"
ESCALATION_OUT_OF_ORDER = (
    "escalation levels must fall due in level order: a higher level cannot be due before a "
    "lower one"
)
ESCALATION_AFTER_TOO_LONG = "escalation after must be shorter than 2562047h"
WEBHOOK_AND_RECEIVER = "an escalation level names either webhook or receiver, not both"
RECEIVER_SLACK_NEEDS_URL = "a slack receiver needs urlSecretRef"
RECEIVER_PAGERDUTY_NEEDS_KEY = "a pagerduty receiver needs routingKeySecretRef"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"

# string.Template placeholders, because PromQL is full of braces that str.format would eat.
# Every `$` must start `$$`, `${namespace}`, `${name}`, `$namespace` or `$name` not followed by
# another identifier character; that is exactly the set Template.substitute(namespace=...,
# name=...) can render. (A placeholder directly followed by `$` is refused although Template
# would accept it: without lookahead, RE2 cannot tell `$name$$` from `$name$x`.)
METRICS_TEMPLATE_PATTERN = (
    r"^([^$]|\$\$|\$\{(namespace|name)\}|\$(namespace|name)([^A-Za-z0-9_$]|$))*$"
)
_METRICS_TEMPLATE = re.compile(METRICS_TEMPLATE_PATTERN.removeprefix("^").removesuffix("$"))
_HTTP_URL = re.compile(HTTP_URL_PATTERN.removeprefix("^").removesuffix("$"))

# Client libraries create a status series at its first request with that status, and new
# pods start with fresh series: "no 5xx series" is no errors (`or vector(0)`), while no
# traffic at all leaves the denominator empty, so the ratio stays no data (never healthy).
DEFAULT_ERROR_RATE_QUERY = (
    '(sum(rate(luminamind_requests_total{namespace="$namespace",deployment="$name",'
    'status=~"5.."}[1m])) or vector(0)) / sum(rate(luminamind_requests_total'
    '{namespace="$namespace",deployment="$name"}[1m]))'
)
DEFAULT_P95_LATENCY_QUERY = (
    "histogram_quantile(0.95, sum by (le) (rate(luminamind_request_duration_seconds_bucket"
    '{namespace="$namespace",deployment="$name"}[1m])))'
)

# The longest duration Go's time.ParseDuration (CEL's duration()) can represent.
_GO_MAX_DURATION = timedelta(hours=2562047)


class MetricKind(StrEnum):
    ERROR_RATE = "errorRate"
    P95_LATENCY = "p95Latency"


class LocalSecretRef(ApiModel):
    name: str = Field(pattern=DNS1123_SUBDOMAIN_PATTERN, min_length=1, max_length=253)


class PrometheusAuth(ApiModel):
    """Credentials for the policy's Prometheus, by reference: a Secret in the policy's
    namespace whose keys are read as `token` (bearer), `username` and `password` (basic
    auth), `ca.crt` (CA bundle), `tls.crt` and `tls.key` (client certificate) and
    `header.<Name>` (extra headers, e.g. `header.X-Scope-OrgID`); absent keys are not used."""

    secret_ref: LocalSecretRef = Field(alias="secretRef")


class MetricQueries(ApiModel):
    """Where Prometheus is and the PromQL templates for the guide's two golden signals."""

    prometheus_url: str | None = Field(
        default=None,
        alias="prometheusURL",
        max_length=2048,
        description="Prometheus base URL; the operator's configured one if unset.",
    )
    auth: PrometheusAuth | None = Field(
        default=None, description="Credentials for prometheusURL, from a Secret (by reference)."
    )
    error_rate: str = Field(
        default=DEFAULT_ERROR_RATE_QUERY,
        min_length=1,
        max_length=4096,
        description="PromQL for the 5xx ratio (0..1); $namespace and $name are substituted.",
    )
    p95_latency: str = Field(
        default=DEFAULT_P95_LATENCY_QUERY,
        min_length=1,
        max_length=4096,
        description="PromQL for the p95 latency in seconds; $namespace and $name substituted.",
    )

    @field_validator("prometheus_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and _HTTP_URL.fullmatch(url) is None:
            raise ValueError(PROMETHEUS_URL_INVALID)
        return url

    @field_validator("error_rate", "p95_latency")
    @classmethod
    def _known_placeholders(cls, template: str) -> str:
        if _METRICS_TEMPLATE.fullmatch(template) is None:
            raise ValueError(TEMPLATE_PLACEHOLDERS_INVALID)
        return template

    def render(self, kind: MetricKind, *, namespace: str, name: str) -> str:
        """The PromQL for `kind` about Deployment `name` in `namespace`."""
        template = self.error_rate if kind is MetricKind.ERROR_RATE else self.p95_latency
        return Template(template).substitute(namespace=namespace, name=name)


class SeverityThresholds(ApiModel):
    """The guide's thresholds: P1 above 5% errors or 20s p95, P2 above 0.5% or 5s."""

    p1_error_rate: StrictFloat = Field(default=0.05, ge=0, le=1)
    p1_p95_seconds: StrictFloat = Field(default=20, ge=0)
    p2_error_rate: StrictFloat = Field(default=0.005, ge=0, le=1)
    p2_p95_seconds: StrictFloat = Field(default=5, ge=0)

    @model_validator(mode="after")
    def _p2_not_above_p1(self) -> "SeverityThresholds":
        if self.p2_error_rate > self.p1_error_rate:
            raise ValueError(P2_ERROR_RATE_ABOVE_P1)
        if self.p2_p95_seconds > self.p1_p95_seconds:
            raise ValueError(P2_P95_ABOVE_P1)
        return self


class RuleCondition(ApiModel):
    """When a rule applies; an empty list matches anything."""

    severities: Annotated[tuple[Severity, ...], AfterValidator(reject_duplicates)] = Field(
        default=(), max_length=5
    )
    alertnames: Annotated[
        tuple[Annotated[str, Field(max_length=256)], ...], AfterValidator(reject_duplicates)
    ] = Field(default=(), max_length=32)
    recent_rollout_within: Duration | None = Field(
        default=None, description="Only if the target rolled out at most this long ago."
    )


class Rule(ApiModel):
    name: str = Field(pattern=DNS1123_LABEL_PATTERN, min_length=1, max_length=63)
    when: RuleCondition = Field(default_factory=RuleCondition)
    actions: ActionSteps
    gitops: GitOpsMode = Field(
        default=GitOpsMode.REFUSE,
        description="A target applied by Argo CD or Flux: suspend the tool for the incident, "
        "refuse (escalate naming it), or proceed with a warning.",
    )


class VerificationCriteria(ApiModel):
    """The guide's recovery checklist, held for `window` before an incident is Resolved."""

    window: Duration = Field(
        default=timedelta(seconds=30), description="How long the checks must hold."
    )
    timeout: Duration | None = Field(
        default=None,
        description="How long a step may take to pass before the next is tried (3x window).",
    )
    max_error_rate: StrictFloat = Field(default=0.005, ge=0, le=1)
    max_p95_seconds: StrictFloat = Field(default=5, ge=0)
    require_all_pods_ready: StrictBool = True
    require_no_firing_alerts: StrictBool = True


class Guardrails(ApiModel):
    cooldown: Duration = Field(
        default=timedelta(minutes=10),
        description="Minimum time between two mitigations of the same target.",
    )
    max_actions_per_hour: StrictInt = Field(default=6, ge=1)
    max_concurrent_mitigations: StrictInt = Field(default=3, ge=1)
    protected_namespaces: Annotated[
        tuple[Annotated[str, Field(pattern=DNS1123_LABEL_PATTERN, max_length=63)], ...],
        AfterValidator(reject_duplicates),
    ] = Field(
        default=(),
        max_length=64,
        description="Never acted in; kube-system, kube-public, kube-node-lease always are.",
    )
    require_approval_for: Annotated[tuple[ActionType, ...], AfterValidator(reject_duplicates)] = (
        Field(default=(), max_length=len(ActionType))
    )
    dry_run: StrictBool = False
    max_replicas: StrictInt = Field(default=20, ge=1)
    act_on_unknown: StrictBool = Field(
        default=False,
        description="When evidence is missing, act on the alert's or the spec's severity.",
    )
    target_wait: Duration = Field(
        default=timedelta(minutes=3),
        description="How long an Incident waits for its Deployment to exist before it fails.",
    )


class SecretKeyRef(ApiModel):
    """One key of a Secret in the policy's own namespace."""

    name: str = Field(pattern=DNS1123_SUBDOMAIN_PATTERN, min_length=1, max_length=253)
    key: str = Field(pattern=SECRET_KEY_PATTERN, min_length=1, max_length=253)


class ReceiverFormat(StrEnum):
    SLACK = "slack"
    PAGERDUTY = "pagerduty"


class Receiver(ApiModel):
    """Where a level's notifications go, with its URL and keys in Secrets: status, Events and
    logs name the receiver only."""

    name: str = Field(
        pattern=DNS1123_LABEL_PATTERN,
        min_length=1,
        max_length=63,
        description="Shown in status, Events and logs instead of the URL.",
    )
    format: ReceiverFormat = Field(
        default=ReceiverFormat.SLACK,
        description="slack: a JSON POST with a Slack-compatible `text`; pagerduty: PagerDuty "
        "Events API v2 (trigger, then resolve with the same dedup_key).",
    )
    url_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="The webhook URL (slack: required; pagerduty: default "
        "https://events.pagerduty.com/v2/enqueue).",
    )
    routing_key_secret_ref: SecretKeyRef | None = Field(
        default=None, description="pagerduty: the integration's routing key."
    )
    send_resolved: StrictBool = Field(
        default=True, description="Also notify when the incident is resolved."
    )

    @model_validator(mode="after")
    def _complete(self) -> "Receiver":
        if self.format is ReceiverFormat.SLACK and self.url_secret_ref is None:
            raise ValueError(RECEIVER_SLACK_NEEDS_URL)
        if self.format is ReceiverFormat.PAGERDUTY and self.routing_key_secret_ref is None:
            raise ValueError(RECEIVER_PAGERDUTY_NEEDS_KEY)
        return self


class EscalationLevel(ApiModel):
    after: Duration = Field(description="Time since detection after which this level is due.")
    level: StrictInt = Field(ge=1, le=10)
    name: str | None = Field(default=None, max_length=128)
    webhook: str | None = Field(
        default=None,
        max_length=2048,
        description="URL the notification is POSTed to, in plain text (prefer `receiver`, "
        "whose URL stays in a Secret).",
    )
    receiver: Receiver | None = None

    @model_validator(mode="after")
    def _one_destination(self) -> "EscalationLevel":
        if self.webhook is not None and self.receiver is not None:
            raise ValueError(WEBHOOK_AND_RECEIVER)
        return self

    @property
    def receiver_name(self) -> str | None:
        """What status, Events and logs call the destination (never its URL)."""
        if self.receiver is not None:
            return self.receiver.name
        return "webhook" if self.webhook is not None else None

    @field_validator("webhook")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and _HTTP_URL.fullmatch(url) is None:
            raise ValueError(WEBHOOK_URL_INVALID)
        return url

    @field_validator("after")
    @classmethod
    def _representable_in_go(cls, after: timedelta) -> timedelta:
        # The CRD's ordering rule parses `after` with CEL's duration(), which is Go's.
        if after >= _GO_MAX_DURATION:
            raise ValueError(ESCALATION_AFTER_TOO_LONG)
        return after


class PolicySpec(ApiModel):
    selector: LabelSelector
    metrics: MetricQueries = Field(default_factory=MetricQueries)
    severity_thresholds: SeverityThresholds = Field(
        default_factory=SeverityThresholds, alias="severity"
    )
    rules: tuple[Rule, ...] = Field(min_length=1, max_length=50)
    verification: VerificationCriteria = Field(default_factory=VerificationCriteria)
    guardrails: Guardrails = Field(default_factory=Guardrails)
    revert_on_resolve: Annotated[
        tuple[RevertibleActionType, ...], AfterValidator(reject_duplicates)
    ] = Field(default=(), max_length=3)
    escalation: tuple[EscalationLevel, ...] = Field(default=(), max_length=10)

    @field_validator("rules")
    @classmethod
    def _unique_rule_names(cls, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        if len({rule.name for rule in rules}) != len(rules):
            raise ValueError(RULE_NAMES_NOT_UNIQUE)
        return rules

    @field_validator("escalation")
    @classmethod
    def _levels_unique_and_ordered(
        cls, levels: tuple[EscalationLevel, ...]
    ) -> tuple[EscalationLevel, ...]:
        if len({level.level for level in levels}) != len(levels):
            raise ValueError(ESCALATION_LEVELS_NOT_UNIQUE)
        by_level = sorted(levels, key=lambda level: level.level)
        if any(lower.after > higher.after for lower, higher in pairwise(by_level)):
            raise ValueError(ESCALATION_OUT_OF_ORDER)
        return levels
