"""The Incident's life, one tick at a time: Triaging → (AwaitingApproval) → Mitigating →
Verifying → Resolved | Escalated | Failed.

`advance` is pure over its ports: it reads the world through `World` (target snapshot,
metrics, policies), acts through it (apply/revert), and returns the next status plus the
events to post. The handler persists the status; nothing here sleeps or retries by itself:
the next tick simply looks again. One module per phase; `Tick` is what they share.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from mitigator.domain.lifecycle.draft import Event, summarize
from mitigator.domain.lifecycle.gitops import restore_gitops
from mitigator.domain.lifecycle.mitigating import await_approval, mitigate
from mitigator.domain.lifecycle.resolving import release_claim, resolve_by_hand
from mitigator.domain.lifecycle.tick import Advance, IncidentView, Tick
from mitigator.domain.lifecycle.triaging import triage
from mitigator.domain.lifecycle.verifying import verify
from mitigator.domain.ports import World
from mitigator.domain.verify import DEFAULT_REFRESH
from mitigator.models import Phase

__all__ = ["Advance", "Event", "IncidentView", "advance", "summarize"]

_STEP_OF_PHASE = {
    Phase.TRIAGING: triage,
    Phase.AWAITING_APPROVAL: await_approval,
    Phase.MITIGATING: mitigate,
    Phase.VERIFYING: verify,
}


def advance(
    view: IncidentView,
    *,
    world: World,
    now: datetime,
    protected_namespaces: Iterable[str],
    verification_refresh: timedelta = DEFAULT_REFRESH,
) -> Advance:
    """One step of the incident's life from its current status. `verification_refresh`: how
    old the recorded values of a verification window in which nothing changed may get before
    they are written again."""
    tick = Tick(
        view,
        world=world,
        now=now,
        protected_namespaces=protected_namespaces,
        verification_refresh=verification_refresh,
    )
    phase = view.status.phase or Phase.TRIAGING
    if view.spec.resolve and not phase.is_terminal:
        resolve_by_hand(tick)
    elif phase in _STEP_OF_PHASE:
        _STEP_OF_PHASE[phase](tick)
    restore_gitops(tick)
    release_claim(tick)
    return tick.finish()
