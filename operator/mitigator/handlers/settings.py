"""Operator settings from the environment (a Deployment sets them; tests set them too)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from mitigator.domain.guardrails import ALWAYS_PROTECTED_NAMESPACES


@dataclass(frozen=True)
class OperatorSettings:
    prometheus_url: str | None
    protected_namespaces: frozenset[str]
    tick_seconds: float
    escalation_tick_seconds: float
    max_workers: int

    @classmethod
    def from_environment(cls) -> OperatorSettings:
        extra = os.environ.get("MITIGATOR_PROTECTED_NAMESPACES", "")
        return cls(
            prometheus_url=os.environ.get("MITIGATOR_PROMETHEUS_URL") or None,
            protected_namespaces=ALWAYS_PROTECTED_NAMESPACES
            | {n.strip() for n in extra.split(",") if n.strip()},
            tick_seconds=float(os.environ.get("MITIGATOR_TICK_SECONDS", "2")),
            escalation_tick_seconds=float(os.environ.get("MITIGATOR_ESCALATION_TICK_SECONDS", "5")),
            max_workers=int(os.environ.get("MITIGATOR_MAX_WORKERS", "32")),
        )


@dataclass(frozen=True)
class BridgeSettings:
    """The Alertmanager bridge inside the operator's process: on when MITIGATOR_BRIDGE_PORT is
    set. The rest of its settings (token, target labels, limits) are the bridge's own
    MITIGATOR_BRIDGE_* variables, read by `mitigator.bridge.config.BridgeConfig`."""

    port: int | None
    host: str
    tls_cert: str | None
    tls_key: str | None

    @classmethod
    def from_environment(cls) -> BridgeSettings:
        port = os.environ.get("MITIGATOR_BRIDGE_PORT", "").strip()
        return cls(
            port=int(port) if port else None,
            host=os.environ.get("MITIGATOR_BRIDGE_HOST", "127.0.0.1"),
            tls_cert=os.environ.get("MITIGATOR_BRIDGE_TLS_CERT") or None,
            tls_key=os.environ.get("MITIGATOR_BRIDGE_TLS_KEY") or None,
        )
