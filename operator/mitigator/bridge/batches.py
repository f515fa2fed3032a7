"""Several alert groups of one target decided together, for one write (a group commit). Pure:
`mitigator.bridge.upsert` reads the Incidents, writes the one patch and answers each group.

Each group is decided as `episodes.decide` would alone, in arrival order, on the Incidents as
the groups before it in the batch left them (their patches applied here, not yet written): so
a batch of groups attaching to the target's open Incident is one merge patch that carries all
their alerts, and the answer to each is what it would have been one at a time. A group whose
decision is not a patch or keep of the batch's Incident (it creates one, it has nothing to
do, its own Incident is another, or what was read does not settle it) is left for a later
round, and so is every later group of its own."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mitigator.bridge.episodes import Keep, Patch, decide
from mitigator.bridge.grouping import TargetAlerts
from mitigator.bridge.identity import LABEL_GROUP
from mitigator.models.base import JsonObject


def apply_patch(document: Any, patch: Any) -> Any:
    """`patch` applied to `document` as the API server applies a JSON merge patch (RFC 7386),
    into a new document: `document` is not changed (it may be what `Recent` remembers)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(document) if isinstance(document, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_patch(result.get(key), value)
    return result


def compose(first: JsonObject | None, then: JsonObject) -> JsonObject:
    """One merge patch that does what applying `first` and then `then` does: `then`'s values
    win, a null of `then` still removes, and objects merge key by key."""
    if first is None:
        return then
    result = dict(first)
    for key, value in then.items():
        before = result.get(key)
        if isinstance(before, dict) and isinstance(value, dict):
            result[key] = compose(before, value)
        else:
            result[key] = value
    return result


@dataclass(frozen=True)
class Fold:
    """What one round writes: `patch` (None: nothing changes) of the Incident `name`, and the
    decision of each group it carries (by index in the batch); `rest`, the groups left for a
    later round."""

    name: str | None = None
    patch: JsonObject | None = None
    carried: tuple[tuple[int, Patch | Keep], ...] = ()
    rest: tuple[int, ...] = ()
    recorded: int = 0  # alerts the Incident records once the patch is written
    incident: JsonObject | None = field(default=None, repr=False)  # ... as it will read then
    base: JsonObject | None = field(default=None, repr=False)  # ... as it was read


def _name(incident: Mapping[str, Any]) -> str:
    return str((incident.get("metadata") or {}).get("name", ""))


def _group(incident: Mapping[str, Any]) -> Any:
    return ((incident.get("metadata") or {}).get("labels") or {}).get(LABEL_GROUP)


def fold(
    targets: Sequence[TargetAlerts],
    own: Iterable[JsonObject],
    hosts: Iterable[JsonObject],
    now: datetime,
    *,
    complete: bool,
) -> Fold:
    """The groups of one target (`targets`, in arrival order) folded into one write.

    `own`: every Incident made for any of these groups (read by their labels); `hosts`: other
    Incidents of the namespace that may host them, `complete` when that is all of them (the
    namespace was listed), else the few the bridge wrote lately. With `hosts` incomplete only
    a patch or keep is settled (as `upsert._settled` says): a create or a skip may be wrong
    for want of the Incident that was not read."""
    state: dict[str, JsonObject] = {}
    for incident in (*own, *hosts):
        state.setdefault(_name(incident), incident)
    host_names = list(dict.fromkeys(_name(host) for host in hosts))
    read = dict(state)
    name: str | None = None
    patch: JsonObject | None = None
    carried: list[tuple[int, Patch | Keep]] = []
    rest: list[int] = []
    postponed: set[str] = set()  # groups with a request left for later: keep their order
    for index, target in enumerate(targets):
        if target.group_label in postponed:
            rest.append(index)
            continue
        mine = [i for i in state.values() if _group(i) == target.group_label]
        others = list(state.values()) if complete else [state[n] for n in host_names]
        decision = decide(target, mine, now, others)
        if not isinstance(decision, Patch | Keep) or (name is not None and decision.name != name):
            postponed.add(target.group_label)
            rest.append(index)
            continue
        name = decision.name
        if isinstance(decision, Patch):
            state[name] = apply_patch(state[name], decision.patch)
            patch = compose(patch, decision.patch)
        carried.append((index, decision))
    if name is None:
        return Fold(rest=tuple(rest))
    recorded = len(((state[name].get("spec") or {}).get("source") or {}).get("alerts") or [])
    return Fold(name, patch, tuple(carried), tuple(rest), recorded, state[name], read[name])
