"""The bounded timeline and metav1-style conditions."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from mitigator.domain.conditions import find_condition, set_condition
from mitigator.domain.timeline import append_timeline, timeline_entry
from mitigator.models import (
    MAX_TIMELINE_ENTRIES,
    ConditionStatus,
    IncidentStatus,
    TimelineEntry,
    TimelineEvent,
)
from tests.unit.factories import NOW


def _entry(n: int, event: str = "ActionApplied") -> TimelineEntry:
    return timeline_entry(event, f"entry {n}", at=NOW + timedelta(seconds=n))


def test_append_keeps_order() -> None:
    timeline = append_timeline(None, _entry(0, TimelineEvent.DETECTED))
    timeline = append_timeline(timeline, _entry(1))
    assert [entry.message for entry in timeline] == ["entry 0", "entry 1"]


def test_a_full_timeline_drops_the_oldest_but_keeps_detected() -> None:
    timeline: tuple[TimelineEntry, ...] = (_entry(0, TimelineEvent.DETECTED),)
    for n in range(1, 250):
        timeline = append_timeline(timeline, _entry(n))
    assert len(timeline) == MAX_TIMELINE_ENTRIES
    assert timeline[0].event == TimelineEvent.DETECTED
    assert timeline[1].message == "entry 51"
    assert timeline[-1].message == "entry 249"
    # The result fits the CRD (maxItems 200).
    IncidentStatus(timeline=timeline)


def test_without_detected_it_is_a_plain_window() -> None:
    timeline: tuple[TimelineEntry, ...] = ()
    for n in range(5):
        timeline = append_timeline(timeline, _entry(n), limit=3)
    assert [entry.message for entry in timeline] == ["entry 2", "entry 3", "entry 4"]


@given(
    st.lists(st.sampled_from(["Detected", "ActionApplied", "Verified"]), max_size=40),
    st.integers(1, 10),
)
def test_bounded_ordered_and_detected_survives(events: list[str], limit: int) -> None:
    timeline: tuple[TimelineEntry, ...] = ()
    for n, event in enumerate(events):
        timeline = append_timeline(timeline, _entry(n, event), limit=limit)
    assert len(timeline) == min(len(events), limit)
    assert list(timeline) == sorted(timeline, key=lambda entry: entry.at)
    if events:
        assert timeline[-1].message == f"entry {len(events) - 1}"
    if "Detected" in events and limit > 1:
        first = events.index("Detected")
        assert any(entry.message == f"entry {first}" for entry in timeline)


def test_long_messages_are_cut_to_the_crd_limit() -> None:
    entry = timeline_entry("Failed", "x" * 10_000, at=NOW)
    assert len(entry.message) == 4096 and entry.message.endswith("…")


def test_conditions_transition_times_move_only_on_change() -> None:
    conditions = set_condition(
        None,
        condition_type="Valid",
        status=ConditionStatus.TRUE,
        reason="Accepted",
        message="ok",
        now=NOW,
        observed_generation=1,
    )
    later = NOW + timedelta(minutes=5)
    same = set_condition(
        conditions,
        condition_type="Valid",
        status=ConditionStatus.TRUE,
        reason="Accepted",
        message="still ok",
        now=later,
        observed_generation=2,
    )
    valid = find_condition(same, "Valid")
    assert valid is not None
    assert (valid.last_transition_time, valid.message, valid.observed_generation) == (
        NOW,
        "still ok",
        2,
    )
    flipped = set_condition(
        same,
        condition_type="Valid",
        status=ConditionStatus.FALSE,
        reason="InvalidSpec",
        message="spec.rules: ...",
        now=later,
    )
    valid = find_condition(flipped, "Valid")
    assert valid is not None and valid.last_transition_time == later
    both = set_condition(
        flipped,
        condition_type="Ready",
        status=ConditionStatus.UNKNOWN,
        reason="Pending",
        message="",
        now=later,
    )
    assert [condition.type for condition in both] == ["Valid", "Ready"]
    assert find_condition(both, "Missing") is None
    assert find_condition(None, "Valid") is None
