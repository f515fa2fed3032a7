"""Which Incidents kopf's watch brings at all: not those the operator owes nothing more.

An Incident is written `status.settled: true` in the very status write that leaves the
operator nothing more to do for it:
- the tick's write that makes it final (Resolved, Failed, Suppressed: models.Phase.is_terminal)
  when no resolved notice can be owed (escalation.settled_by_the_tick): Failed, Suppressed, a
  drill, or Resolved under a policy with no escalation levels;
- for a Resolved one whose policy has escalation levels, the escalation timer's write: the one
  that records every resolved notice sent or given up on (after its attempts, the policy
  gone), or, nobody having been told, a write of `settled` alone (one write more, for such
  policies only). The tick leaves those to that timer because both run at once from the same
  body: a page sent while the tick resolved and settled would never get its resolved notice,
  the Incident having left the watch. The escalation timer alone both pages and settles.
From then on no tick moves it (incidents.needs_tick), no notice is sent for it
(escalation.needs_notice), the live-incidents index leaves it out. Yet kopf listed and kept
each one, for good: at a start, every object of the namespace waits in memory until every
index is full, and each watched object keeps its per-object state (1–15 KB) for as long as
the process lives; a cluster gathers thousands of Resolved ones over months. The CRD declares
`.status.settled` and `.status.phase` selectable fields (crds/incidents.yaml), so the API
server leaves them out of the listing and of the watch: `status.settled!=true` also matches
an Incident without the field (an open one, and a Resolved one an older build left, which may
still owe notices). The phase terms stay for Incidents made Failed or Suppressed by an older
build, which have no `settled`. Should a page's write land after a settling write all the
same, it removes `settled` again: the watch brings the Incident back (ADDED; departures.py
forgets it) and its resolved notice is sent.

A Resolved Incident from an older build stays watched unless its policy has escalation levels
(the escalation timer then settles it once); start_listing.py lets only Failed and Suppressed
ones skip the wait for the indexes at a start.

When an Incident is settled, the API server tells the filtered watch DELETED (with the object
as it last matched). That event is handled as a deletion is (departures.py): its timers stop,
the indexes and the `mitigator_incidents` gauge forget it, and nothing is written to it (kopf
writes nothing on a DELETED event). The Incident itself stays, with its status, for people and
the console, which read through their own clients.

With a CRD older than this operator (no selectable field), the API server refuses the
selector (400): the watch then goes on without it, as before, and says so in the log.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import kopf
from kopf._cogs.clients import errors, watching
from kopf._cogs.structs import references

from mitigator import API_GROUP, INCIDENT_PLURAL
from mitigator.handlers.kopf_hooks import wrap_once
from mitigator.models import Phase
from mitigator.observability.logs import get_logger

log = get_logger("mitigator.watch")
Watch = Callable[..., AsyncGenerator[Any, None]]

SETTLED = "status.settled"
PHASE = "status.phase"
FIELD = f"{SETTLED}, {PHASE}"  # named in the log when the API server refuses them
LEFT_OUT: tuple[Phase, ...] = (Phase.FAILED, Phase.SUPPRESSED)


def incident_field_selector() -> str:
    """The field selector of kopf's Incident listing and watch."""
    return ",".join([f"{SETTLED}!=true", *(f"{PHASE}!={phase.value}" for phase in LEFT_OUT)])


def left_out(status: Mapping[str, Any]) -> bool:
    """Whether the watch leaves out an Incident with this status (what the selector says)."""
    return status.get("settled") is True or Phase.of(status.get("phase")) in LEFT_OUT


def select_incidents(settings: kopf.OperatorSettings) -> None:
    settings.watching.field_selectors[(API_GROUP, INCIDENT_PLURAL)] = incident_field_selector()


def _selector_key(settings: kopf.OperatorSettings, resource: references.Resource) -> Any:
    """Our Incident selector's key in kopf's settings, if it applies to `resource`."""
    for key in settings.watching.field_selectors:
        if key.group == API_GROUP and key.check(resource):
            return key
    return None


def _falling_back(original: Watch) -> Watch:
    async def infinite_watch(
        *, settings: kopf.OperatorSettings, resource: references.Resource, **kwargs: Any
    ) -> AsyncGenerator[Any, None]:
        while True:
            stream = original(settings=settings, resource=resource, **kwargs)
            try:
                async for item in stream:
                    yield item
                return
            except errors.APIClientError as exc:
                # 400: the API server does not know the field (a CRD older than this
                # operator). Watch every Incident, as before, rather than none.
                key = _selector_key(settings, resource)
                if exc.status != 400 or key is None:
                    raise
                del settings.watching.field_selectors[key]
                log.warning(
                    "the Incident CRD has no selectable fields: watching every Incident, "
                    "settled ones too (apply crds/ of this version)",
                    field=FIELD,
                    error=str(exc),
                )
            finally:
                await stream.aclose()

    return infinite_watch


def fall_back_without_selector() -> bool:
    """Install the fallback on kopf's watch (once). False if this kopf has no such function."""
    return wrap_once(watching, "infinite_watch", _falling_back)
