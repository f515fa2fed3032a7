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
from mitigator.handlers.departures import Departures, watch_departures
from mitigator.settings import OperatorSettings

__all__ = ["register"]


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    startup.register(registry, settings)
    indexes.register(registry, settings)
    # One record of deleted Incidents for both Incident timers (they carry no finalizer).
    departures = Departures()
    watch_departures(registry, departures)
    incidents.register(registry, settings, departures=departures)
    escalation.register(registry, settings, departures=departures)
    policies.register(registry)
    bridge.register(registry)
    observing.register(registry)
