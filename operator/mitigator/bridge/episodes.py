"""What to do with a target's alerts, given the Incidents already made for its group and the
other open Incidents of its target: create, patch, keep or skip. Pure:
`mitigator.bridge.upsert` reads the Incidents and carries it out.

A group key is forever: the same alert firing next week has the same groupKey. Merging it into
last week's Resolved Incident would hide it from the operator, which does not act on a finished
Incident. So an Incident is *closed* once Alertmanager reported the whole group resolved
(``spec.source.resolvedAt``) and the operator finished with it (a terminal phase: Resolved or
Failed); a firing alert that is newer than what the closed Incident recorded opens the next
episode, ``<name>-2``, ``<name>-3``, ... (label ``mitigator.luminamind.io/alert-episode``).
Until then, resends, new alerts and resolutions all go to the same Incident.

One target, one open Incident: when the group has no open Incident of its own and its target
already has one (a person's, or another group's: any Incident of the namespace whose
``spec.target.name`` is the Deployment and whose phase is not Resolved or Failed), the alerts
are *attached* to it (listed in its ``spec.source.alerts``) instead of opening a second one.
Resends find it again and change nothing; resolutions are recorded on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from mitigator.bridge.grouping import TargetAlerts
from mitigator.bridge.identity import LABEL_GROUP, MAX_EPISODE, episode_of
from mitigator.bridge.limits import (
    ANNOTATION_DROPPED,
    dropped_annotation,
    read_dropped,
    with_dropped,
)
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
    attached: bool = False  # to an Incident not made for this group
    dropped: int = 0  # alerts of the notification not recorded (over the cap)
    # The Incident as it was decided on (`writes.guarded_patch` guards the write with it).
    base: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Keep:
    name: str
    recorded: int
    attached: bool = False
    dropped: int = 0


@dataclass(frozen=True)
class Skip:
    message: str


Decision = Create | Patch | Keep | Skip


def _metadata(incident: Mapping[str, Any]) -> Mapping[str, Any]:
    return incident.get("metadata") or {}


def _phase(incident: Mapping[str, Any]) -> Phase | None:
    try:
        return Phase((incident.get("status") or {}).get("phase", ""))
    except ValueError:  # no phase yet
        return None


def source_of(incident: Mapping[str, Any]) -> IncidentSource:
    spec = incident.get("spec") or {}
    try:
        return IncidentSource.model_validate(spec.get("source") or {})
    except ValidationError:  # pragma: no cover - the CRD's schema makes it valid
        return IncidentSource(type=SourceType.ALERTMANAGER)


def _raw_source(incident: Mapping[str, Any]) -> Mapping[str, Any]:
    return (incident.get("spec") or {}).get("source") or {}


def closed(incident: Mapping[str, Any]) -> bool:
    """Alertmanager reported all its alerts resolved and the operator is done with it."""
    phase = _phase(incident)
    resolved = bool(_raw_source(incident).get("resolvedAt"))
    return resolved and phase is not None and phase.is_terminal


def lists_alerts_of(incident: Mapping[str, Any], target: TargetAlerts) -> bool:
    """The Incident lists some of the target's alerts (read without validating them all)."""
    mine = {record.fingerprint for record in target.records}
    listed = _raw_source(incident).get("alerts") or ()
    return any(isinstance(a, dict) and a.get("fingerprint") in mine for a in listed)


@dataclass(frozen=True)
class Episode:
    number: int
    incident: Mapping[str, Any] = field(repr=False)

    @property
    def name(self) -> str:
        return str(self.incident["metadata"]["name"])

    @property
    def source(self) -> IncidentSource:
        return source_of(self.incident)

    @property
    def closed(self) -> bool:
        return closed(self.incident)


def episodes(incidents: Iterable[Mapping[str, Any]]) -> list[Episode]:
    """The Incidents of one alert group, oldest episode first."""
    found = [
        Episode(episode_of(_metadata(incident).get("labels") or {}), incident)
        for incident in incidents
    ]
    return sorted(found, key=lambda episode: (episode.number, episode.name))


def open_episode(incidents: Iterable[Mapping[str, Any]]) -> Episode | None:
    """The group's own Incident its alerts go to, if one is open. When there is none, the
    target's other Incidents (`hosts`) are worth reading before deciding."""
    known = episodes(incidents)
    return known[-1] if known and not known[-1].closed else None


def _age(incident: Mapping[str, Any]) -> tuple[str, str]:
    metadata = _metadata(incident)
    return str(metadata.get("creationTimestamp", "")), str(metadata.get("name", ""))


def _hosts(target: TargetAlerts, incidents: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Incidents of the target not made for this group, oldest first."""
    found = [
        incident
        for incident in incidents
        if ((incident.get("spec") or {}).get("target") or {}).get("name") == target.deployment
        and (_metadata(incident).get("labels") or {}).get(LABEL_GROUP) != target.group_label
        and not _metadata(incident).get("deletionTimestamp")
    ]
    return sorted(found, key=_age)


def is_open(incident: Mapping[str, Any]) -> bool:
    """May take new alerts: not Resolved or Failed, and no person asked to resolve it."""
    phase = _phase(incident)
    return (phase is None or not phase.is_terminal) and not (incident.get("spec") or {}).get(
        "resolve"
    )


def decide(
    target: TargetAlerts,
    incidents: Iterable[Mapping[str, Any]],
    now: datetime,
    hosts: Iterable[Mapping[str, Any]] = (),
) -> Decision:
    """What to do with `target`'s alerts, given the Incidents already made for its group and
    the Incidents of its namespace that may host them (read when `open_episode` is None)."""
    known = episodes(incidents)
    latest = known[-1] if known else None
    others = _hosts(target, hosts)
    listing = [host for host in others if lists_alerts_of(host, target)]
    # Where the group's alerts are: its own latest episode, or an Incident it was attached to.
    homes = [*((latest.incident,) if latest else ()), *reversed(listing)]
    home = next((h for h in homes if not closed(h)), homes[0] if homes else None)
    attached = latest is None or home is not latest.incident
    if home is not None and not closed(home):
        return _merge(target, home, now, attached=attached)
    if target.firing and (home is None or _reopens(target.records, source_of(home).alerts)):
        host = next((h for h in others if is_open(h)), None)
        if host is not None:
            return _merge(target, host, now, attached=True)
        episode = min(latest.number + 1, MAX_EPISODE) if latest else 1
        return Create(episode, target.body(episode))
    if home is not None:  # a late resend, a resolution: recorded where the alerts are
        return _merge(target, home, now, attached=attached)
    return Skip("resolved alerts of a group that has no Incident: nothing to open")


def _merge(
    target: TargetAlerts, incident: Mapping[str, Any], now: datetime, *, attached: bool = False
) -> Patch | Keep:
    """The target's alerts merged into `incident`'s, with the group's counts of what was left
    out; Keep when nothing changes."""
    metadata = _metadata(incident)
    name = str(metadata.get("name", ""))
    source = source_of(incident)
    merged = cap_records(merge_records(source.alerts, target.records), target.limits.max_alerts)
    resolved_at = resolution(merged, source.resolved_at, now)
    known = read_dropped(metadata.get("annotations"))
    dropped = target.dropped(merged)
    counts = with_dropped(known, dropped)
    if merged == tuple(source.alerts) and resolved_at == source.resolved_at and counts == known:
        return Keep(name, len(merged), attached, dropped.alerts)
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
    patch_metadata: JsonObject = {}
    if counts != known:
        patch_metadata["annotations"] = {ANNOTATION_DROPPED: dropped_annotation(counts)}
    resource_version = metadata.get("resourceVersion")
    if resource_version:
        # Optimistic concurrency: a concurrent writer makes this a 409 and we merge again.
        patch_metadata["resourceVersion"] = resource_version
    if patch_metadata:
        patch["metadata"] = patch_metadata
    return Patch(name, patch, len(merged), attached, dropped.alerts, base=incident)


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
