"""The operator's settings: one validated object, built once at start (from the environment
a Deployment sets, with the command line's values winning) and handed to the handlers
through kopf's memo."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mitigator.bridge.config import BridgeSettings, load_bridge_settings


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
    escalation_tick_seconds: float = Field(
        default=5.0, gt=0, description="How often escalation levels are checked."
    )
    max_workers: int = Field(
        default=32, ge=1, description="Sync handler threads (bounds parallel incidents)."
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
