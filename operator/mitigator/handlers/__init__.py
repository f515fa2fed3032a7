"""Thin kopf glue. Importing this package registers every handler with kopf."""

from mitigator.handlers import escalation, incidents, policies, startup

__all__ = ["escalation", "incidents", "policies", "startup"]
