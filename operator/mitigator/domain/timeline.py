"""The incident's timeline: what happened, oldest first, bounded like the CRD says."""

from collections.abc import Sequence
from datetime import datetime

from mitigator.models import MAX_TIMELINE_ENTRIES, TimelineEntry, TimelineEvent

MAX_MESSAGE_LENGTH = 4096


def timeline_entry(event: str, message: str = "", *, at: datetime) -> TimelineEntry:
    """An entry, its message cut to what the CRD accepts."""
    if len(message) > MAX_MESSAGE_LENGTH:
        message = message[: MAX_MESSAGE_LENGTH - 1] + "…"
    return TimelineEntry(at=at, event=event, message=message)


def append_timeline(
    timeline: Sequence[TimelineEntry] | None,
    entry: TimelineEntry,
    *,
    limit: int = MAX_TIMELINE_ENTRIES,
) -> tuple[TimelineEntry, ...]:
    """The timeline with `entry` appended, at most `limit` entries long.

    When full, the oldest entries go, except the first Detected entry: when it all started is
    the one line a post-mortem cannot do without.
    """
    if limit < 1:
        raise ValueError("a timeline holds at least one entry")
    entries = [*(timeline or ()), entry]
    if len(entries) <= limit:
        return tuple(entries)
    detected_index = next(
        (index for index, item in enumerate(entries) if item.event == TimelineEvent.DETECTED),
        None,
    )
    if detected_index is None or detected_index >= len(entries) - limit or limit == 1:
        return tuple(entries[-limit:])
    keep_from = len(entries) - (limit - 1)
    return tuple(
        item for index, item in enumerate(entries) if index == detected_index or index >= keep_from
    )
