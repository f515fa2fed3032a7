"""How much of an alert group an Incident stores, and the count of what it leaves out. Pure.

etcd refuses objects over about 1.5 MiB, and the API server answers that as a 5xx, which
Alertmanager retries forever. So the bridge caps what it stores: labels per alert, the size of
a label's name and value (UTF-8 bytes), and alerts per Incident. What is beyond a cap is not
stored but counted, per alert group, in the Incident's annotation ``ANNOTATION_DROPPED``
(until the Incident's schema has a field for it): a JSON list of ``{"group": <the group's
hash, as in the alert-group label>, "alerts": n, "labels": n, "truncatedAlerts": n}``, one
entry per group whose latest notification left something out:

- ``alerts``: alerts of that notification not recorded, because the Incident already records
  ``max_alerts`` (firing and recent ones are kept first);
- ``labels``: labels left out of the recorded alerts of that notification (over the count, or
  a name or value over its size); the labels that name the target, the alertname and the
  labels the classification reads are kept first;
- ``truncatedAlerts``: the alerts Alertmanager itself left out of that notification (its
  ``max_alerts``), as it reported them.

A label costs its name twice (the API server's managedFields repeat every map key) and its
value once: at the defaults (100 alerts × 32 labels × (2 × 64 + 256) bytes) the largest
Incident the bridge writes measures about 1.2 MB with its managedFields
(tests/integration/test_bridge_hardening.py), leaving room under etcd's 1.5 MiB for the
operator's status. Larger settings can exceed it, and the bridge then answers 413 (see
`mitigator.bridge.upsert`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mitigator import API_GROUP
from mitigator.domain.classify import P0_FLAG_LABELS
from mitigator.models.base import JsonObject

ANNOTATION_DROPPED = f"{API_GROUP}/bridge-dropped"

# spec.source.alerts holds at most this many alerts (the CRD's maxItems).
MAX_RECORDED_ALERTS = 100
DEFAULT_MAX_LABELS = 32
DEFAULT_MAX_LABEL_NAME_BYTES = 64
DEFAULT_MAX_LABEL_VALUE_BYTES = 256
# Groups counted on one Incident; more are not worth an ever-growing annotation.
MAX_DROPPED_ENTRIES = 100

# Kept before the others when an alert has more labels than it may store: what the alert is
# and what the classification reads (the target's labels come first, from the mapping rules).
ESSENTIAL_LABELS = ("alertname", "severity", "priority", "category", *P0_FLAG_LABELS)


@dataclass(frozen=True)
class StorageLimits:
    max_alerts: int = MAX_RECORDED_ALERTS
    max_labels: int = DEFAULT_MAX_LABELS
    max_label_name_bytes: int = DEFAULT_MAX_LABEL_NAME_BYTES
    max_label_value_bytes: int = DEFAULT_MAX_LABEL_VALUE_BYTES


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def cap_labels(
    labels: Mapping[str, str], limits: StorageLimits, first: Iterable[str] = ()
) -> tuple[dict[str, str], int]:
    """The labels to store (sorted by name) and how many were left out: a name or value over
    its size first, then beyond `max_labels`, keeping `first` and ESSENTIAL_LABELS before the
    rest (by name)."""
    fitting = {
        name: value
        for name, value in labels.items()
        if _size(name) <= limits.max_label_name_bytes
        and _size(value) <= limits.max_label_value_bytes
    }
    preferred = [name for name in dict.fromkeys((*first, *ESSENTIAL_LABELS)) if name in fitting]
    rest = sorted(name for name in fitting if name not in set(preferred))
    kept = sorted([*preferred, *rest][: limits.max_labels])
    return {name: fitting[name] for name in kept}, len(labels) - len(kept)


@dataclass(frozen=True)
class Dropped:
    """What one alert group's latest notification left out of an Incident."""

    group: str
    alerts: int = 0
    labels: int = 0
    truncated_alerts: int = 0

    @property
    def empty(self) -> bool:
        return not (self.alerts or self.labels or self.truncated_alerts)

    def to_json(self) -> JsonObject:
        return {
            "group": self.group,
            "alerts": self.alerts,
            "labels": self.labels,
            "truncatedAlerts": self.truncated_alerts,
        }


def read_dropped(annotations: Mapping[str, Any] | None) -> dict[str, Dropped]:
    """The counts an Incident's annotation holds, by group; anything unreadable is none."""
    try:
        entries = json.loads((annotations or {}).get(ANNOTATION_DROPPED) or "[]")
    except (TypeError, ValueError):
        return {}
    found: dict[str, Dropped] = {}
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict) or not isinstance(entry.get("group"), str):
            continue
        counts = [entry.get(key, 0) for key in ("alerts", "labels", "truncatedAlerts")]
        if all(isinstance(count, int) and count >= 0 for count in counts):
            found[entry["group"]] = Dropped(entry["group"], *counts)
    return found


def with_dropped(known: Mapping[str, Dropped], entry: Dropped) -> dict[str, Dropped]:
    """`known` with `entry` for its group (removed when it counts nothing)."""
    updated = {group: value for group, value in known.items() if group != entry.group}
    if not entry.empty:
        updated[entry.group] = entry
    return updated


def dropped_annotation(entries: Mapping[str, Dropped]) -> str | None:
    """The annotation's value (None: no annotation), at most MAX_DROPPED_ENTRIES groups."""
    kept = [entries[group] for group in sorted(entries) if not entries[group].empty]
    if not kept:
        return None
    return json.dumps(
        [entry.to_json() for entry in kept[:MAX_DROPPED_ENTRIES]], separators=(",", ":")
    )
