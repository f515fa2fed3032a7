"""At a start, the listed objects whose handlers need no index do not wait in memory for them.

kopf lets no handler run before every index is complete (readiness.py): each object listed at
a start is indexed, then its worker waits, holding the object's body, its patch, its loggers
and its queue, until every object of every indexed kind has been indexed. With 5,000 resolved
Incidents in a namespace that is 5,000 workers at once (about 15 KB each, tracemalloc), and
the process keeps that peak (docs/BENCHMARKS.md, item 21).

One kind of listed object need not wait, on its first event (the listing's) only: an Incident
in a final phase other than Resolved (Failed, Suppressed, left by an older build without
`status.settled`; the watch's selector leaves out those this build settled,
watch_selection.py): its handlers read no index (the gauge; both timers' filters refuse it).
A Resolved one waits: the escalation timer's filter reads the policies index to learn
whether it has to settle it (escalation.settled_by_the_tick). Every other object waits as
kopf has it; every later event (after a start, a watch's re-listing) is handled as kopf does.
(Deployments are not kopf's: deployment_watch.py.)
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from typing import Any

import kopf
from kopf._cogs.aiokits import aiotoggles
from kopf._core.reactor import processing

from mitigator import API_GROUP, INCIDENT_PLURAL
from mitigator.handlers.escalation import owes_nothing
from mitigator.handlers.kopf_hooks import wrap_once
from mitigator.models import Phase

Coroutinefunction = Callable[..., Coroutine[Any, Any, Any]]

# Set while kopf processes an object that need not wait (readiness.py reads it).
EXEMPT: ContextVar[bool] = ContextVar("mitigator_readiness_exempt", default=False)

INCIDENTS = (API_GROUP, INCIDENT_PLURAL)


def settled_incident(raw: dict[str, Any]) -> bool:
    """An Incident no handler of ours will read an index for: final, no resolved notice due,
    and not Resolved (the escalation timer's filter reads the policies index to learn whether
    it is left to settle one: escalation._left_to_settle)."""
    status = raw.get("status") or {}
    if Phase.of(status.get("phase")) is Phase.RESOLVED:
        return False
    return owes_nothing(raw.get("spec") or {}, status)


def _listed_before_ready(
    raw_event: Any,
    resource_indexed: aiotoggles.Toggle | None,
    operator_indexed: aiotoggles.ToggleSet | None,
) -> bool:
    """The listing's event of an object seen before kopf's readiness: its toggle is still in
    the set (kopf drops it once the object is indexed, and makes none after readiness)."""
    return (
        isinstance(raw_event, dict)
        and raw_event.get("type") is None
        and operator_indexed is not None
        and resource_indexed is not None
        and resource_indexed in operator_indexed
    )


def _exempting(original: Coroutinefunction) -> Coroutinefunction:
    async def process_resource_event(
        *,
        resource: Any,
        registry: kopf.OperatorRegistry,
        raw_event: Any,
        resource_indexed: aiotoggles.Toggle | None = None,
        operator_indexed: aiotoggles.ToggleSet | None = None,
        **kwargs: Any,
    ) -> Any:
        exempt = (
            (resource.group, resource.plural) == INCIDENTS
            and _listed_before_ready(raw_event, resource_indexed, operator_indexed)
            and settled_incident(raw_event.get("object") or {})
        )
        token = EXEMPT.set(exempt)
        try:
            return await original(
                resource=resource,
                registry=registry,
                raw_event=raw_event,
                resource_indexed=resource_indexed,
                operator_indexed=operator_indexed,
                **kwargs,
            )
        finally:
            EXEMPT.reset(token)

    return process_resource_event


def exempt_settled_listings() -> bool:
    """Install the exemption on kopf's event processing (once). False if this kopf has no such
    function (then every listed object waits, as kopf has it)."""
    if getattr(processing, "process_resource_event", None) is None:
        return False
    return wrap_once(processing, "process_resource_event", _exempting)
