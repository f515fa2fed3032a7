"""What to do with a target's alerts, given the Incidents already made for its group: create,
patch, keep or skip. Pure: `mitigator.bridge.service` reads the Incidents and carries it out.

A group key is forever: the same alert firing next week has the same groupKey. Merging it into
last week's Resolved Incident would hide it from the operator, which does not act on a finished
Incident. So an Incident is *closed* once Alertmanager reported the whole group resolved
(``spec.source.resolvedAt``) and the operator finished with it (a terminal phase: Resolved or
Failed); a firing alert that is newer than what the closed Incident recorded opens the next
episode, ``<name>-2``, ``<name>-3``, ... (label ``mitigator.luminamind.io/alert-episode``).
Until then, resends, new alerts and resolutions all go to the same Incident.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from mitigator.bridge.grouping import TargetAlerts
from mitigator.bridge.identity import MAX_EPISODE, episode_of
from mitigator.bridge.records import cap_records, is_stale, merge_records, resolution
from mitigator.models import AlertRecord, AlertStatus, IncidentSource, Phase, SourceType
from mitigator.models.base import JsonObject


@dataclass(frozen=True)
class Create:
    episode: int
    body: JsonObject

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])


@dataclass(frozen=True)
class Patch:
    name: str
    patch: JsonObject
    recorded: int  # alerts recorded after the patch


@dataclass(frozen=True)
class Keep:
    name: str
    recorded: int


@dataclass(frozen=True)
class Skip:
    message: str


Decision = Create | Patch | Keep | Skip


@dataclass(frozen=True)
class Episode:
    number: int
    incident: Mapping[str, Any] = field(repr=False)

    @property
    def name(self) -> str:
        return str(self.incident["metadata"]["name"])

    @property
    def source(self) -> IncidentSource:
        spec = self.incident.get("spec") or {}
        try:
            return IncidentSource.model_validate(spec.get("source") or {})
        except ValidationError:  # pragma: no cover - the CRD's schema makes it valid
            return IncidentSource(type=SourceType.ALERTMANAGER)

    @property
    def closed(self) -> bool:
        """Alertmanager reported the whole group resolved and the operator is done with it."""
        if self.source.resolved_at is None:
            return False
        status = self.incident.get("status") or {}
        try:
            return Phase(status.get("phase", "")).is_terminal
        except ValueError:  # no phase yet
            return False


def episodes(incidents: Iterable[Mapping[str, Any]]) -> list[Episode]:
    """The Incidents of one alert group, oldest episode first."""
    found = [
        Episode(episode_of((incident.get("metadata") or {}).get("labels") or {}), incident)
        for incident in incidents
    ]
    return sorted(found, key=lambda episode: (episode.number, episode.name))


def decide(target: TargetAlerts, incidents: Iterable[Mapping[str, Any]], now: datetime) -> Decision:
    """What to do with `target`'s alerts, given the Incidents already made for its group."""
    known = episodes(incidents)
    if not known:
        if target.firing:
            return Create(1, target.body(1))
        return Skip("resolved alerts of a group that has no Incident: nothing to open")
    latest = known[-1]
    source = latest.source
    if latest.closed and _reopens(target.records, source.alerts):
        episode = min(latest.number + 1, MAX_EPISODE)
        return Create(episode, target.body(episode))
    merged = cap_records(merge_records(source.alerts, target.records))
    resolved_at = resolution(merged, source.resolved_at, now)
    if merged == tuple(source.alerts) and resolved_at == source.resolved_at:
        return Keep(latest.name, len(merged))
    resource_version = (latest.incident.get("metadata") or {}).get("resourceVersion")
    patch: JsonObject = {
        "spec": {
            "source": {
                "alerts": [record.to_api_dict() for record in merged],
                # null removes it: the group fires again.
                "resolvedAt": IncidentSource(resolved_at=resolved_at)
                .to_api_dict()
                .get("resolvedAt"),
            }
        }
    }
    if resource_version:
        # Optimistic concurrency: a concurrent writer makes this a 409 and we merge again.
        patch["metadata"] = {"resourceVersion": resource_version}
    return Patch(latest.name, patch, len(merged))


def _reopens(incoming: Iterable[AlertRecord], recorded: Sequence[AlertRecord]) -> bool:
    """A firing alert that the closed Incident has not seen resolve: a new episode."""
    known = {record.fingerprint: record for record in recorded}
    for record in incoming:
        if record.status is not AlertStatus.FIRING:
            continue
        before = known.get(record.fingerprint)
        if before is None or not is_stale(record, before):
            return True
    return False
