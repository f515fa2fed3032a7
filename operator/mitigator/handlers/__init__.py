"""Thin kopf glue. Importing this package registers every handler with kopf."""

from mitigator.handlers import bridge, escalation, incidents, policies, startup

__all__ = ["bridge", "escalation", "incidents", "policies", "startup"]
