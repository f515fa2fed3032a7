"""How resends, new alerts and resolutions merge into the alerts an Incident records, and
what the bridge decides given the Incidents of a group: create, patch, keep, skip, or open the
next episode."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from mitigator.bridge.episodes import Create, Keep, Patch, Skip, decide
from mitigator.bridge.grouping import TargetAlerts
from mitigator.bridge.identity import LABEL_EPISODE
from mitigator.bridge.records import MAX_RECORDED_ALERTS, cap_records, merge_records, resolution
from mitigator.models import AlertRecord, AlertStatus
from tests.unit.alerts import NOW, T0, at, only_target, wire_alert


def record(fingerprint: str, status: str = "firing", starts: float = 0, **kw: Any) -> AlertRecord:
    return AlertRecord(
        fingerprint=fingerprint,
        status=AlertStatus(status),
        starts_at=T0 + timedelta(minutes=starts),
        **kw,
    )


def existing(
    target: TargetAlerts,
    *,
    alerts: list[AlertRecord],
    episode: int = 1,
    phase: str | None = None,
    resolved_at: str | None = None,
) -> dict[str, Any]:
    """An Incident as the API server returns it, for `target`'s group."""
    body = target.body(episode)
    body["metadata"]["resourceVersion"] = "42"
    body["spec"]["source"]["alerts"] = [a.to_api_dict() for a in alerts]
    if resolved_at:
        body["spec"]["source"]["resolvedAt"] = resolved_at
    if phase:
        body["status"] = {"phase": phase}
    return body


# ----------------------------------------------------------------- merging


def test_merge_updates_by_fingerprint_and_appends_new_alerts() -> None:
    merged = merge_records(
        [record("a"), record("b")],
        [record("b", "resolved", ends_at=T0 + timedelta(minutes=3)), record("c")],
    )
    assert [(r.fingerprint, r.status.value) for r in merged] == [
        ("a", "firing"),
        ("b", "resolved"),
        ("c", "firing"),
    ]


def test_stale_states_do_not_overwrite_newer_ones() -> None:
    resolved = record("a", "resolved", starts=0, ends_at=T0 + timedelta(minutes=5))
    # The same firing episode, delivered late: stays resolved.
    assert merge_records([resolved], [record("a", "firing", starts=0)]) == [resolved]
    # The alert fired again (a later start): firing.
    refired = record("a", "firing", starts=30)
    assert merge_records([resolved], [refired]) == [refired]
    # An older episode's resolution does not resolve the newer firing.
    assert merge_records([refired], [resolved]) == [refired]


def test_at_most_100_alerts_firing_and_recent_first() -> None:
    old_resolved = [
        record(f"r{i}", "resolved", starts=i, ends_at=T0 + timedelta(minutes=i + 1))
        for i in range(60)
    ]
    firing = [record(f"f{i}", starts=i) for i in range(60)]
    kept = cap_records([*old_resolved, *firing])
    assert len(kept) == MAX_RECORDED_ALERTS
    assert {r.fingerprint for r in kept} >= {f"f{i}" for i in range(60)}
    assert {r.fingerprint for r in kept if r.status is AlertStatus.RESOLVED} == {
        f"r{i}" for i in range(20, 60)
    }
    assert [r.fingerprint for r in kept][:40] == [f"r{i}" for i in range(20, 60)]  # order kept


def test_resolution() -> None:
    ended = T0 + timedelta(minutes=7)
    done = [record("a", "resolved", ends_at=T0), record("b", "resolved", ends_at=ended)]
    assert resolution(done, None, NOW) == ended
    assert resolution(done, T0, NOW) == T0  # once recorded, it stays
    assert resolution([*done, record("c")], T0, NOW) is None
    assert resolution([record("a", "resolved")], None, NOW) == NOW  # no endsAt given
    assert resolution([], None, NOW) is None


# ----------------------------------------------------------------- decisions


def test_decide_create_or_skip_when_the_group_has_no_incident() -> None:
    firing = only_target(wire_alert("a"))
    decision = decide(firing, [], NOW)
    assert isinstance(decision, Create) and decision.episode == 1
    assert decision.name == firing.name()
    resolved = only_target(wire_alert("a", status="resolved"))
    assert isinstance(decide(resolved, [], NOW), Skip)


def test_decide_keep_a_resend() -> None:
    target = only_target(wire_alert("a"))
    decision = decide(target, [existing(target, alerts=list(target.records))], NOW)
    assert decision == Keep(target.name(), 1)


def test_decide_patch_with_optimistic_concurrency() -> None:
    target = only_target(wire_alert("a", status="resolved", ends=9))
    current = existing(target, alerts=[record("a")])
    decision = decide(target, [current], NOW)
    assert isinstance(decision, Patch)
    assert decision.name == target.name()
    assert decision.patch["metadata"] == {"resourceVersion": "42"}
    source = decision.patch["spec"]["source"]
    assert source["resolvedAt"] == at(9)
    assert [a["status"] for a in source["alerts"]] == ["resolved"]
    assert set(decision.patch["spec"]) == {"source"}  # nothing else is touched


def test_a_refire_reopens_an_incident_the_operator_is_still_on() -> None:
    target = only_target(wire_alert("a", starts=30))
    current = existing(
        target,
        alerts=[record("a", "resolved", ends_at=T0)],
        phase="Verifying",
        resolved_at=at(5),
    )
    decision = decide(target, [current], NOW)
    assert isinstance(decision, Patch)
    assert decision.patch["spec"]["source"]["resolvedAt"] is None  # a merge patch deletes it


def test_a_closed_incident_gets_a_next_episode_for_a_new_firing_only() -> None:
    stale = only_target(wire_alert("a", starts=0))
    resolved = [record("a", "resolved", ends_at=T0)]
    current = existing(stale, alerts=resolved, phase="Resolved", resolved_at=at(5))
    assert isinstance(decide(stale, [current], NOW), Keep)

    later = only_target(wire_alert("a", starts=90))
    decision = decide(later, [current], NOW)
    assert isinstance(decision, Create) and decision.episode == 2
    assert decision.name == later.name(2)
    assert decision.body["metadata"]["labels"][LABEL_EPISODE] == "2"

    other = only_target(wire_alert("b", starts=0))
    assert isinstance(decide(other, [current], NOW), Create)

    # Failed is final too; Escalated is not (people still work on it).
    failed = existing(stale, alerts=[record("a", "resolved")], phase="Failed", resolved_at=at(5))
    assert isinstance(decide(later, [failed], NOW), Create)
    escalated = existing(
        stale, alerts=[record("a", "resolved")], phase="Escalated", resolved_at=at(5)
    )
    assert isinstance(decide(later, [escalated], NOW), Patch)


def test_the_latest_episode_takes_the_alerts() -> None:
    target = only_target(wire_alert("a", starts=90))
    first = existing(target, alerts=[record("a", "resolved")], phase="Resolved", resolved_at=at(5))
    second = existing(target, alerts=list(target.records), episode=2)
    decision = decide(target, [second, first], NOW)
    assert decision == Keep(target.name(2), 1)
