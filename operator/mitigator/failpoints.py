"""Fault injection for crash tests, in the manner of etcd's gofail: named points where the
process dies at once when ``MITIGATOR_FAILPOINTS`` names them. Unset (always, in production)
they do nothing."""

from __future__ import annotations

import os

AFTER_ACTION_APPLIED = "after-action-applied"


def armed(name: str) -> bool:
    return name in {p.strip() for p in os.environ.get("MITIGATOR_FAILPOINTS", "").split(",")}


def crash_if_armed(name: str) -> None:
    """Die like a SIGKILL would: no cleanup, no status write, exit code 137."""
    if armed(name):
        os._exit(137)
