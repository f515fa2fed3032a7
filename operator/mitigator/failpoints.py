"""Fault injection for crash tests, in the manner of etcd's gofail: named points where the
process dies at once when ``MITIGATOR_FAILPOINTS`` names them. Unset (always, in production)
they do nothing."""

from __future__ import annotations

import os
import time
from pathlib import Path

# One per step of an Incident's life, in the order an uninterrupted run passes them. Each
# dies before the tick (or the escalation) that reached it writes anything to the Incident.
AFTER_CLASSIFICATION = "after-classification"
AFTER_PLANNING = "after-planning"
AFTER_ACTION_APPLIED = "after-action-applied"  # the target is written, the status is not
DURING_ROLLOUT_WAIT = "during-rollout-wait"  # a Verifying tick before the window opened
DURING_VERIFICATION = "during-verification"  # a Verifying tick inside the window
DURING_REVERT = "during-revert"  # a revertOnResolve step written, the status not
DURING_ESCALATION_DELIVERY = "during-escalation-delivery"  # webhook answered, not recorded
# Not a crash: the write of an action waits here, between its read and its patch, until the
# test lets it go (creates MITIGATOR_FAILPOINT_GATE), so another writer can come in between.
PAUSE_BEFORE_ACTION_WRITE = "pause-before-action-write"


def armed(name: str) -> bool:
    return name in {p.strip() for p in os.environ.get("MITIGATOR_FAILPOINTS", "").split(",")}


def crash_if_armed(name: str) -> None:
    """Die like a SIGKILL would: no cleanup, no status write, exit code 137."""
    if armed(name):
        os._exit(137)


def pause_if_armed(name: str, *, limit: float = 60.0) -> None:
    """Announce the point (``<gate>.reached``) and wait until the gate file exists. Only ever
    armed by tests; then it blocks one handler thread by design."""
    gate = os.environ.get("MITIGATOR_FAILPOINT_GATE")
    if not gate or not armed(name):
        return
    Path(f"{gate}.reached").touch()
    deadline = time.monotonic() + limit
    while not Path(gate).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
