"""Thin kopf glue: `register` puts every handler into a kopf registry, with the intervals
the settings give."""

from __future__ import annotations

from collections.abc import Sequence

import kopf

from mitigator.handlers import (
    bridge,
    deployment_feed,
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


def register(
    registry: kopf.OperatorRegistry, settings: OperatorSettings, *, namespaces: Sequence[str] = ()
) -> None:
    """`namespaces`: as given to kopf (exact names or patterns; none: every namespace)."""
    startup.register(registry, settings)
    # After startup's: its cache goes into the Cluster that start-up handler makes.
    deployment_feed.register(registry, namespaces=namespaces)
    indexes.register(registry, settings)
    # One record of deleted Incidents for both Incident timers (they carry no finalizer).
    departures = Departures()
    watch_departures(registry, departures)
    incidents.register(registry, settings, departures=departures)
    escalation.register(registry, settings, departures=departures)
    policies.register(registry)
    bridge.register(registry)
    observing.register(registry)
