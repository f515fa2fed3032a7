"""Operator settings from the environment (a Deployment sets them; tests set them too)."""

from __future__ import annotations

import os
from dataclasses import dataclass

ALWAYS_PROTECTED = frozenset({"kube-system", "kube-public", "kube-node-lease"})


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
            protected_namespaces=ALWAYS_PROTECTED
            | {n.strip() for n in extra.split(",") if n.strip()},
            tick_seconds=float(os.environ.get("MITIGATOR_TICK_SECONDS", "2")),
            escalation_tick_seconds=float(os.environ.get("MITIGATOR_ESCALATION_TICK_SECONDS", "5")),
            max_workers=int(os.environ.get("MITIGATOR_MAX_WORKERS", "32")),
        )
