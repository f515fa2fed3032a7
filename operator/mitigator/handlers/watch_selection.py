"""Which Incidents kopf's watch brings at all: not those the operator will never look at again.

An Incident that has Failed, or was Suppressed (another Incident mitigates its target), is
final (models.Phase.is_terminal): no tick moves it (incidents.needs_tick), no notice is sent
for it (escalation.needs_notice), the live-incidents index leaves it out. Yet kopf listed and
kept each one: at a start, every object of the namespace waits in memory until every index is
full, and the process keeps that peak. The CRD declares `.status.phase` a selectable field
(crds/incidents.yaml), so the API server leaves them out of the listing and of the watch.

When an Incident turns Failed or Suppressed, the API server tells the filtered watch DELETED
(with the object as it last matched). That event is handled as a deletion is
(departures.py): its timers stop, the indexes and the `mitigator_incidents` gauge forget it,
and nothing is written to it (kopf writes nothing on a DELETED event). The Incident itself
stays, with its status, for people and the console, which read through their own clients.

Resolved is left in, on purpose: a Resolved Incident still has its resolved notices to send
to every escalation level that was told of it (escalation.needs_notice), with retries, and
after a restart too. The watch is the only way the operator learns of them, and a field
selector cannot say "Resolved unless its notices are pending" (its terms only AND).

With a CRD older than this operator (no selectable field), the API server refuses the
selector (400): the watch then goes on without it, as before, and says so in the log.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
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

FIELD = "status.phase"
LEFT_OUT: tuple[Phase, ...] = (Phase.FAILED, Phase.SUPPRESSED)


def incident_field_selector() -> str:
    """The field selector of kopf's Incident listing and watch."""
    return ",".join(f"{FIELD}!={phase.value}" for phase in LEFT_OUT)


def left_out(phase: str | None) -> bool:
    """Whether the watch leaves out an Incident in this phase (what the selector says)."""
    return Phase.of(phase) in LEFT_OUT


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
                    "the Incident CRD has no selectable field: watching every Incident, "
                    "terminal ones too (apply crds/ of this version)",
                    field=FIELD,
                    error=str(exc),
                )
            finally:
                await stream.aclose()

    return infinite_watch


def fall_back_without_selector() -> bool:
    """Install the fallback on kopf's watch (once). False if this kopf has no such function."""
    return wrap_once(watching, "infinite_watch", _falling_back)
