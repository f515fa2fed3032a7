"""Who to notify, and when: the guide's escalation matrix (on-call 15m, engineering lead 1h,
VP 2h, CEO 4h), counted from detection."""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from mitigator.models import EscalationLevel, EscalationNotice, EscalationStatus


@dataclass(frozen=True, kw_only=True)
class EscalationDue:
    """The levels to notify now (lowest first) and when the next one falls due (None: no
    other level is pending)."""

    due: tuple[EscalationLevel, ...]
    next_due_at: datetime | None


def due_escalations(
    levels: Sequence[EscalationLevel],
    *,
    detected_at: datetime,
    now: datetime,
    notified_levels: Collection[int],
    escalated: bool,
) -> EscalationDue:
    """Levels whose time since detection has come and that have not been notified yet.

    An Escalated incident (the operator ran out of steps) is the moment people must know: the
    first level is then due at once, whatever its `after`; later levels keep their times.
    Call this only for incidents that are not resolved.
    """
    pending = sorted(
        (level for level in levels if level.level not in notified_levels),
        key=lambda level: level.level,
    )
    first_level = min((level.level for level in levels), default=None)

    def due_at(level: EscalationLevel) -> datetime:
        scheduled = detected_at + level.after
        if escalated and level.level == first_level:
            return min(scheduled, now)
        return scheduled

    due = tuple(level for level in pending if due_at(level) <= now)
    later = [due_at(level) for level in pending if due_at(level) > now]
    return EscalationDue(due=due, next_due_at=min(later, default=None))


def settled_levels(status: EscalationStatus | None, *, max_attempts: int) -> set[int]:
    """Levels that need no further notification attempt: delivered, or given up on after
    `max_attempts` (and a level without a webhook is settled once recorded)."""
    if status is None or not status.levels:
        return set()
    return {
        notice.level
        for notice in status.levels
        if notice.delivered or not notice.webhook or (notice.attempts or 0) >= max_attempts
    }


def record_notification(
    status: EscalationStatus | None,
    level: EscalationLevel,
    *,
    now: datetime,
    delivered: bool,
    error: str | None = None,
) -> EscalationStatus:
    """The escalation status after one notification attempt for `level`."""
    notices = list(status.levels or ()) if status else []
    previous = next((notice for notice in notices if notice.level == level.level), None)
    notice = EscalationNotice(
        level=level.level,
        name=level.name,
        webhook=level.webhook,
        notified_at=previous.notified_at if previous and previous.notified_at else now,
        delivered=delivered,
        attempts=(previous.attempts or 0) + 1 if previous else 1,
        last_error=error,
    )
    notices = sorted(
        [other for other in notices if other.level != level.level] + [notice],
        key=lambda item: item.level,
    )
    highest = max((status.level or 0) if status else 0, level.level)
    notified_at = now if level.level >= highest else (status.notified_at if status else now)
    return EscalationStatus(level=highest, notified_at=notified_at, levels=tuple(notices))
