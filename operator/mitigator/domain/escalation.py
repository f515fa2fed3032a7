"""Who to notify, and when: the guide's escalation matrix (on-call 15m, engineering lead 1h,
VP 2h, CEO 4h), counted from detection."""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

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


# Retries: 5 s, then doubling (5, 10, 20, 40, 80 s): six attempts over about 2.5 minutes,
# then the level is given up on (recorded as not delivered, with the last error).
RETRY_BASE = timedelta(seconds=5)
MAX_ATTEMPTS = 6


def retry_at(attempts: int, last_attempt_at: datetime, *, base: timedelta = RETRY_BASE) -> datetime:
    """When the attempt after `attempts` failed ones may be made: exponential backoff."""
    return last_attempt_at + base * (1 << max(attempts - 1, 0))


def _has_destination(notice: EscalationNotice) -> bool:
    return bool(notice.receiver or notice.webhook)


def settled_levels(
    status: EscalationStatus | None,
    *,
    max_attempts: int = MAX_ATTEMPTS,
    now: datetime | None = None,
) -> set[int]:
    """Levels that need no notification attempt now: delivered, given up on after
    `max_attempts`, or (with `now`) waiting for their next retry; a level without a
    destination is settled once recorded."""
    if status is None or not status.levels:
        return set()
    return {
        notice.level
        for notice in status.levels
        if notice.delivered
        or not _has_destination(notice)
        or (notice.attempts or 0) >= max_attempts
        or (
            now is not None
            and notice.last_attempt_at is not None
            and retry_at(notice.attempts or 0, notice.last_attempt_at) > now
        )
    }


def resolve_due(
    levels: Sequence[EscalationLevel],
    status: EscalationStatus | None,
    *,
    now: datetime,
    max_attempts: int = MAX_ATTEMPTS,
) -> tuple[EscalationLevel, ...]:
    """Levels to tell that the incident is resolved: those whose notification was delivered,
    whose receiver wants resolved messages, not told yet, and not backing off."""
    notices = {notice.level: notice for notice in (status.levels or ())} if status else {}
    due = []
    for level in sorted(levels, key=lambda item: item.level):
        notice = notices.get(level.level)
        if notice is None or not notice.delivered or notice.resolved_notified:
            continue
        if level.receiver is not None and not level.receiver.send_resolved:
            continue
        if level.receiver is None and level.webhook is None:
            continue
        attempts = notice.resolve_attempts or 0
        if attempts >= max_attempts:
            continue
        if attempts and notice.last_attempt_at and retry_at(attempts, notice.last_attempt_at) > now:
            continue
        due.append(level)
    return tuple(due)


def resolve_pending(
    levels: Sequence[EscalationLevel],
    status: EscalationStatus | None,
    *,
    max_attempts: int = MAX_ATTEMPTS,
) -> bool:
    """Whether a level still has a resolved message to get (now or after its backoff)."""
    notices = {notice.level: notice for notice in (status.levels or ())} if status else {}
    for level in levels:
        notice = notices.get(level.level)
        wants = level.receiver.send_resolved if level.receiver is not None else bool(level.webhook)
        if (
            notice is not None
            and notice.delivered
            and wants
            and not notice.resolved_notified
            and (notice.resolve_attempts or 0) < max_attempts
        ):
            return True
    return False


def record_resolve(
    status: EscalationStatus,
    level: EscalationLevel,
    *,
    now: datetime,
    delivered: bool,
    error: str | None = None,
) -> EscalationStatus:
    """The escalation status after one attempt to tell `level` the incident is resolved."""
    notices = [
        notice.model_copy(
            update={
                "resolved_notified": delivered,
                "resolve_attempts": (notice.resolve_attempts or 0) + 1,
                "last_attempt_at": now,
                "last_error": error if not delivered else notice.last_error,
            }
        )
        if notice.level == level.level
        else notice
        for notice in status.levels or ()
    ]
    return status.model_copy(update={"levels": tuple(notices)})


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
        receiver=level.receiver_name,
        notified_at=previous.notified_at if previous and previous.notified_at else now,
        delivered=delivered,
        attempts=(previous.attempts or 0) + 1 if previous else 1,
        last_attempt_at=now,
        last_error=error,
    )
    notices = sorted(
        [other for other in notices if other.level != level.level] + [notice],
        key=lambda item: item.level,
    )
    highest = max((status.level or 0) if status else 0, level.level)
    notified_at = now if level.level >= highest else (status.notified_at if status else now)
    return EscalationStatus(level=highest, notified_at=notified_at, levels=tuple(notices))
