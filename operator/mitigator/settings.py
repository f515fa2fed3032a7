"""The operator's settings: one validated object, built once at start (from the environment
a Deployment sets, with the command line's values winning) and handed to the handlers
through kopf's memo."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mitigator.bridge.config import BridgeSettings, load_bridge_settings
from mitigator.domain.ceilings import Ceilings
from mitigator.metrics.prometheus import PrometheusConnection


class OperatorSettings(BaseSettings):
    """`MITIGATOR_*` environment variables; see the README's table."""

    model_config = SettingsConfigDict(env_prefix="MITIGATOR_", frozen=True, extra="forbid")

    prometheus_url: str | None = Field(
        default=None, description="Prometheus for policies that name none."
    )
    protected_namespaces: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Extra never-touched namespaces (comma-separated globs); the control "
        "plane's own are always protected.",
    )
    tick_seconds: float = Field(default=2.0, gt=0, description="How often a live incident moves.")
    verification_refresh_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How often a verification window in which no verdict changed writes its "
        "observed values anyway (0: every tick).",
    )
    escalation_tick_seconds: float = Field(
        default=5.0, gt=0, description="How often escalation levels are checked."
    )
    max_workers: int = Field(
        default=32, ge=1, description="Sync handler threads (bounds parallel incidents)."
    )
    api_connections: int | None = Field(
        default=None,
        ge=8,
        description="Connections kopf may hold open to the API server (watches and writes); "
        "default: max_workers + 16 + 3 per watched namespace (`mitigator run`).",
    )
    bridge: BridgeSettings = Field(
        default_factory=load_bridge_settings,
        description="The Alertmanager bridge inside the operator (MITIGATOR_BRIDGE_*); on when "
        "it has a port.",
    )

    # --- leader election (a coordination.k8s.io/v1 Lease, the controller-runtime scheme) ---
    leader_election: bool = Field(
        default=True,
        description="Act only while holding the Lease (replicas > 1 need it; off: always act).",
    )
    lease_name: str = Field(default="mitigator-leader", min_length=1, max_length=253)
    lease_namespace: str | None = Field(
        default=None,
        description="Where the Lease lives; default: the pod's namespace, else the one watched "
        "namespace, else `default`.",
    )
    lease_duration_seconds: int = Field(
        default=15, ge=1, description="How long a standby waits on an unrenewed Lease."
    )
    renew_deadline_seconds: float = Field(
        default=10.0, gt=0, description="The leader stops acting this long after its last renewal."
    )
    retry_period_seconds: float = Field(
        default=2.0, gt=0, description="How often the Lease is renewed or tried."
    )
    leader_identity: str | None = Field(
        default=None, description="This replica's name in the Lease; default: hostname_uuid."
    )

    @model_validator(mode="after")
    def _leader_timing(self) -> OperatorSettings:
        # A leader that cannot renew must stop acting before a standby may take the Lease.
        if self.renew_deadline_seconds >= self.lease_duration_seconds:
            raise ValueError("renew_deadline_seconds must be shorter than lease_duration_seconds")
        if self.retry_period_seconds >= self.renew_deadline_seconds:
            raise ValueError("retry_period_seconds must be shorter than renew_deadline_seconds")
        return self

    # --- Observability and connections (issue 11): logs, /metrics, Prometheus, ceilings ---
    log_format: Literal["json", "console"] | None = Field(
        default=None, description="json | console; default: console on a terminal, else json."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="Serve the operator's /metrics on this port."
    )
    metrics_host: str = Field(default="0.0.0.0", description="Address /metrics listens on.")
    prometheus_ca_file: str | None = Field(
        default=None, description="CA bundle Prometheus's certificate is verified against."
    )
    prometheus_cert_file: str | None = Field(default=None, description="Client certificate.")
    prometheus_key_file: str | None = Field(default=None, description="Its private key.")
    prometheus_bearer_token_file: str | None = Field(
        default=None, description="File holding a bearer token (re-read on every query)."
    )
    prometheus_username: str | None = Field(default=None, description="Basic auth user.")
    prometheus_password_file: str | None = Field(
        default=None, description="File holding the basic auth password."
    )
    prometheus_headers: Annotated[tuple[tuple[str, str], ...], NoDecode] = Field(
        default=(), description="Extra headers, `Name=value,...` (e.g. X-Scope-OrgID=team-a)."
    )
    prometheus_insecure_skip_verify: bool = Field(
        default=False, description="Do not verify Prometheus's certificate (never in production)."
    )
    allowed_prometheus_urls: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="URL patterns a policy's metrics.prometheusURL may match (fnmatch, "
        "comma-separated; `*` any); empty: only MITIGATOR_PROMETHEUS_URL.",
    )
    allowed_webhook_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Host patterns escalation webhooks may name (fnmatch, comma-separated; "
        "`*` any); empty: none.",
    )
    max_replicas: int | None = Field(
        default=None, ge=1, description="Ceiling on any policy's guardrails.maxReplicas."
    )

    def ceilings(self) -> Ceilings:
        """What no namespaced policy may exceed."""
        return Ceilings(
            allowed_prometheus_urls=self.allowed_prometheus_urls,
            default_prometheus_url=self.prometheus_url,
            allowed_webhook_hosts=self.allowed_webhook_hosts,
            max_replicas=self.max_replicas,
            protected_namespaces=(
                "kube-system",
                "kube-public",
                "kube-node-lease",
                *self.protected_namespaces,
            ),
        )

    def prometheus_connection(self) -> PrometheusConnection:
        return PrometheusConnection(
            ca_file=self.prometheus_ca_file,
            cert_file=self.prometheus_cert_file,
            key_file=self.prometheus_key_file,
            bearer_token_file=self.prometheus_bearer_token_file,
            username=self.prometheus_username,
            password_file=self.prometheus_password_file,
            headers=dict(self.prometheus_headers),
            insecure_skip_verify=self.prometheus_insecure_skip_verify,
        )

    @field_validator("allowed_prometheus_urls", "allowed_webhook_hosts", mode="before")
    @classmethod
    def _comma_separated_patterns(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("prometheus_headers", mode="before")
    @classmethod
    def _headers(cls, value: Any) -> Any:
        if isinstance(value, str):
            pairs = [part.strip() for part in value.split(",") if part.strip()]
            if any("=" not in pair for pair in pairs):
                raise ValueError("expected Name=value pairs, comma-separated")
            return tuple(tuple(p.strip() for p in pair.split("=", 1)) for pair in pairs)
        if isinstance(value, dict):
            return tuple(value.items())
        return value

    @model_validator(mode="after")
    def _connection_complete(self) -> OperatorSettings:
        if bool(self.prometheus_cert_file) != bool(self.prometheus_key_file):
            raise ValueError("prometheus_cert_file and prometheus_key_file go together")
        if bool(self.prometheus_username) != bool(self.prometheus_password_file):
            raise ValueError("prometheus_username and prometheus_password_file go together")
        return self

    # --- end of issue 11's section ---

    def bridge_settings(self) -> BridgeSettings:
        """The bridge inside the operator opens no Incident where the operator would refuse
        to act: the operator's protected namespaces are the bridge's too."""
        known = self.bridge.protected_namespaces
        extra = tuple(n for n in self.protected_namespaces if n not in known)
        return self.bridge.model_copy(update={"protected_namespaces": (*known, *extra)})

    @field_validator("prometheus_url", "lease_namespace", "leader_identity", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return value or None

    @field_validator("protected_namespaces", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value
