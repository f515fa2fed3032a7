"""The operator's settings: one validated object, built once at start (from the environment
a Deployment sets, with the command line's values winning) and handed to the handlers
through kopf's memo."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
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

    def bridge_settings(self) -> BridgeSettings:
        """The bridge inside the operator opens no Incident where the operator would refuse
        to act: the operator's protected namespaces are the bridge's too."""
        known = self.bridge.protected_namespaces
        extra = tuple(n for n in self.protected_namespaces if n not in known)
        return self.bridge.model_copy(update={"protected_namespaces": (*known, *extra)})

    @field_validator("prometheus_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return value or None

    @field_validator("protected_namespaces", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value
