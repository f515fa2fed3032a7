"""Thin kopf glue: `register` puts every handler into a kopf registry, with the intervals
the settings give."""

from __future__ import annotations

import kopf

from mitigator.handlers import (
    bridge,
    escalation,
    incidents,
    indexes,
    observing,
    policies,
    startup,
)
from mitigator.settings import OperatorSettings

__all__ = ["register"]


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    startup.register(registry, settings)
    indexes.register(registry, settings)
    incidents.register(registry, settings)
    escalation.register(registry, settings)
    policies.register(registry)
    bridge.register(registry)
    observing.register(registry)
