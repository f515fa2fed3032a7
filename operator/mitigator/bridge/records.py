"""The alerts an Incident records (``spec.source.alerts``): how a resend, a new alert or a
resolution changes them, how many are kept, and when the whole group counts as resolved.
Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from mitigator.bridge.limits import MAX_RECORDED_ALERTS
from mitigator.models import AlertRecord, AlertStatus

__all__ = [
    "MAX_RECORDED_ALERTS",
    "any_firing",
    "cap_records",
    "is_stale",
    "merge_records",
    "resolution",
]


def is_stale(incoming: AlertRecord, known: AlertRecord) -> bool:
    """An incoming state older than the one recorded: a delayed or out-of-order resend (two
    Alertmanager replicas both notify) must not turn a resolved alert back into a firing one."""
    if incoming.starts_at and known.starts_at:
        if incoming.starts_at < known.starts_at:
            return True
        if incoming.starts_at > known.starts_at:
            return False
    return known.status is AlertStatus.RESOLVED and incoming.status is AlertStatus.FIRING


def any_firing(records: Iterable[AlertRecord]) -> bool:
    return any(record.status is AlertStatus.FIRING for record in records)


def merge_records(
    existing: Iterable[AlertRecord], incoming: Iterable[AlertRecord]
) -> list[AlertRecord]:
    """The recorded alerts, updated by fingerprint: known alerts take their new state (unless
    it is stale), new alerts are appended. Order: as first seen."""
    merged = {record.fingerprint: record for record in existing}
    for record in incoming:
        known = merged.get(record.fingerprint)
        if known is None or not is_stale(record, known):
            merged[record.fingerprint] = record
    return list(merged.values())


def cap_records(
    records: Sequence[AlertRecord], maximum: int = MAX_RECORDED_ALERTS
) -> tuple[AlertRecord, ...]:
    """At most `maximum`: firing alerts before resolved ones, recent before old; the kept
    alerts stay in their order."""
    if len(records) <= maximum:
        return tuple(records)

    def priority(index: int) -> tuple[bool, float]:
        record = records[index]
        latest = record.ends_at or record.starts_at
        return (record.status is not AlertStatus.FIRING, -(latest.timestamp() if latest else 0))

    keep = sorted(sorted(range(len(records)), key=priority)[:maximum])
    return tuple(records[index] for index in keep)


def resolution(
    records: Sequence[AlertRecord], recorded: datetime | None, now: datetime
) -> datetime | None:
    """When the whole group resolved: None while any alert fires; once all are resolved, the
    time already recorded, else the latest endsAt (else now)."""
    if not records or any_firing(records):
        return None
    if recorded is not None:
        return recorded
    ends = [record.ends_at for record in records if record.ends_at is not None]
    return max(ends) if ends else now
