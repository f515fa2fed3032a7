"""Escalation: the guide's matrix counted from detection; Escalated pages level 1 at once."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from mitigator.domain.escalation import due_escalations, record_notification, settled_levels
from mitigator.models import EscalationLevel, EscalationStatus
from tests.unit.factories import NOW

MATRIX = [
    EscalationLevel(level=1, name="on-call", after=timedelta(minutes=15)),
    EscalationLevel(level=2, name="engineering-lead", after=timedelta(hours=1)),
    EscalationLevel(level=3, name="vp-engineering", after=timedelta(hours=2)),
    EscalationLevel(
        level=4, name="ceo", after=timedelta(hours=4), webhook="https://hooks.example/ceo"
    ),
]


def _levels(due: tuple[EscalationLevel, ...]) -> list[int]:
    return [level.level for level in due]


def test_nothing_is_due_at_detection() -> None:
    result = due_escalations(MATRIX, detected_at=NOW, now=NOW, notified_levels=(), escalated=False)
    assert result.due == ()
    assert result.next_due_at == NOW + timedelta(minutes=15)


def test_levels_fall_due_with_time() -> None:
    later = NOW + timedelta(hours=1, minutes=5)
    result = due_escalations(
        MATRIX, detected_at=NOW, now=later, notified_levels=(), escalated=False
    )
    assert _levels(result.due) == [1, 2]
    assert result.next_due_at == NOW + timedelta(hours=2)


def test_notified_levels_are_not_due_again() -> None:
    later = NOW + timedelta(hours=1, minutes=5)
    result = due_escalations(
        MATRIX, detected_at=NOW, now=later, notified_levels={1}, escalated=False
    )
    assert _levels(result.due) == [2]


def test_escalated_pages_the_first_level_at_once() -> None:
    soon = NOW + timedelta(minutes=2)
    result = due_escalations(MATRIX, detected_at=NOW, now=soon, notified_levels=(), escalated=True)
    assert _levels(result.due) == [1]
    assert result.next_due_at == NOW + timedelta(hours=1)


def test_everything_notified_means_nothing_next() -> None:
    result = due_escalations(
        MATRIX,
        detected_at=NOW,
        now=NOW + timedelta(hours=5),
        notified_levels={1, 2, 3, 4},
        escalated=True,
    )
    assert result == type(result)(due=(), next_due_at=None)
    empty = due_escalations([], detected_at=NOW, now=NOW, notified_levels=(), escalated=True)
    assert empty.due == () and empty.next_due_at is None


@given(st.integers(min_value=0, max_value=6 * 60), st.booleans(), st.sets(st.integers(1, 4)))
def test_due_levels_are_pending_and_on_time(
    minutes: int, escalated: bool, notified: set[int]
) -> None:
    now = NOW + timedelta(minutes=minutes)
    result = due_escalations(
        MATRIX, detected_at=NOW, now=now, notified_levels=notified, escalated=escalated
    )
    for level in result.due:
        assert level.level not in notified
        assert NOW + level.after <= now or (escalated and level.level == 1)
    assert result.next_due_at is None or result.next_due_at > now
    assert _levels(result.due) == sorted(_levels(result.due))


def test_recording_notifications() -> None:
    first = record_notification(None, MATRIX[0], now=NOW, delivered=True)
    assert first.level == 1 and first.notified_at == NOW
    (notice,) = first.levels or ()
    assert (notice.level, notice.name, notice.delivered, notice.attempts) == (1, "on-call", True, 1)

    later = NOW + timedelta(hours=4)
    failed = record_notification(first, MATRIX[3], now=later, delivered=False, error="HTTP 503")
    retried = record_notification(
        failed, MATRIX[3], now=later + timedelta(minutes=1), delivered=True
    )
    assert retried.level == 4
    ceo = (retried.levels or ())[-1]
    assert (ceo.attempts, ceo.delivered, ceo.notified_at, ceo.last_error) == (2, True, later, None)
    assert [notice.level for notice in retried.levels or ()] == [1, 4]


def test_settled_levels() -> None:
    status = record_notification(None, MATRIX[3], now=NOW, delivered=False, error="timeout")
    assert settled_levels(status, max_attempts=3) == set()
    for _ in range(2):
        status = record_notification(status, MATRIX[3], now=NOW, delivered=False, error="timeout")
    assert settled_levels(status, max_attempts=3) == {4}
    # A level without a webhook is settled once recorded (it is an Event and a timeline line).
    status = record_notification(status, MATRIX[0], now=NOW, delivered=False)
    assert settled_levels(status, max_attempts=3) == {1, 4}
    assert settled_levels(None, max_attempts=3) == set()
    assert settled_levels(EscalationStatus(), max_attempts=3) == set()
