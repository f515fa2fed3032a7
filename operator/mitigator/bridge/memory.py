"""What this bridge wrote lately, as hints for what to read first: where each alert group's
alerts went (its own Incident, or the Incident it was attached to), which Incident each target
got last, and that Incident as the API server answered the write (for a few targets).

Only hints: every path is correct without them. A decision made from a remembered object is
acted on only as a patch that names the object's resourceVersion, so a stale memory costs a
409 and a fresh read, never a wrong write."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from mitigator.models.base import JsonObject

OWN = ""  # the group's alerts went to its own Incident

_GROUPS = 10_000
# Whole Incidents are remembered for this many targets: a burst of groups for one target
# attaches without reading back what the bridge itself just wrote.
_OBJECTS = 64

TargetKey = tuple[str, str]  # (namespace, Deployment)


def _put(memory: OrderedDict[Any, Any], key: Any, value: Any, size: int) -> None:
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > size:
        memory.popitem(last=False)


class Recent:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: OrderedDict[str, str] = OrderedDict()  # group hash → OWN or a name
        self._targets: OrderedDict[TargetKey, str] = OrderedDict()  # → the name written last
        self._objects: OrderedDict[TargetKey, JsonObject] = OrderedDict()

    def where(self, digest: str) -> str | None:
        """Where the group's alerts went last: OWN, an Incident's name, None (not lately)."""
        with self._lock:
            return self._groups.get(digest)

    def last_for(self, target: TargetKey) -> str | None:
        """The Incident written last for the target, if lately."""
        with self._lock:
            return self._targets.get(target)

    def written(self, target: TargetKey, name: str) -> JsonObject | None:
        """The Incident `name` as the bridge last wrote it for the target, if remembered."""
        with self._lock:
            found = self._objects.get(target)
        metadata = (found or {}).get("metadata") or {}
        return found if found is not None and metadata.get("name") == name else None

    def remember(
        self, digest: str, target: TargetKey, written: JsonObject | None, *, name: str, own: bool
    ) -> None:
        with self._lock:
            _put(self._groups, digest, OWN if own else name, _GROUPS)
            _put(self._targets, target, name, _GROUPS)
            if written is not None:
                _put(self._objects, target, written, _OBJECTS)

    def forget_object(self, target: TargetKey) -> None:
        with self._lock:
            self._objects.pop(target, None)
