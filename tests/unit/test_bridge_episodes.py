"""How resends, new alerts and resolutions merge into the alerts an Incident records, and
what the bridge decides given the Incidents of a group: create, patch, keep, skip, or open the
next episode."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from mitigator.bridge.episodes import Create, Keep, Patch, Skip, decide
from mitigator.bridge.grouping import TargetAlerts
from mitigator.bridge.identity import LABEL_EPISODE
from mitigator.bridge.limits import (
    ANNOTATION_DROPPED,
    Dropped,
    StorageLimits,
    dropped_annotation,
    read_dropped,
)
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


# ----------------------------------------------------------------- attaching


def incident(
    name: str,
    *,
    target: str = "web",
    phase: str | None = None,
    alerts: list[AlertRecord] | None = None,
    created: str = "2025-11-26T14:00:00Z",
    **spec: Any,
) -> dict[str, Any]:
    """An Incident of the target that is not the group's own: a person's, or another group's."""
    body: dict[str, Any] = {
        "metadata": {"name": name, "resourceVersion": "7", "creationTimestamp": created},
        "spec": {"target": {"kind": "Deployment", "name": target}, **spec},
    }
    if alerts is not None:
        body["spec"]["source"] = {
            "type": "alertmanager",
            "alerts": [a.to_api_dict() for a in alerts],
        }
    if phase:
        body["status"] = {"phase": phase}
    return body


def test_a_new_group_attaches_to_its_targets_open_incident() -> None:
    target = only_target(wire_alert("a"))
    by_hand = incident("by-hand", phase="Mitigating")
    decision = decide(target, [], NOW, [by_hand, incident("other", target="api")])
    assert isinstance(decision, Patch) and decision.attached
    assert decision.name == "by-hand"
    assert [a["fingerprint"] for a in decision.patch["spec"]["source"]["alerts"]] == ["a"]
    assert decision.patch["metadata"] == {"resourceVersion": "7"}
    # Once listed there, a resend changes nothing.
    after = incident("by-hand", phase="Mitigating", alerts=list(target.records))
    assert decide(target, [], NOW, [after]) == Keep("by-hand", 1, attached=True)


def test_the_oldest_open_incident_hosts_and_one_listing_the_alerts_is_kept() -> None:
    target = only_target(wire_alert("a"))
    old = incident("old", created="2025-11-26T13:00:00Z")
    new = incident("new", created="2025-11-26T14:00:00Z")
    decision = decide(target, [], NOW, [new, old])
    assert isinstance(decision, Patch) and decision.name == "old"
    listing = incident("new", alerts=list(target.records))
    assert decide(target, [], NOW, [old, listing]) == Keep("new", 1, attached=True)


@pytest.mark.parametrize(
    "host",
    [
        incident("done", phase="Resolved"),
        incident("failed", phase="Failed"),
        incident("closing", resolve=True),
        incident("elsewhere", target="api"),
    ],
    ids=["resolved", "failed", "resolve-requested", "other-target"],
)
def test_no_open_incident_of_the_target_no_attaching(host: dict[str, Any]) -> None:
    target = only_target(wire_alert("a"))
    assert isinstance(decide(target, [], NOW, [host]), Create)


def test_the_groups_own_open_incident_comes_first() -> None:
    target = only_target(wire_alert("a"))
    own = existing(target, alerts=list(target.records))
    # Its own Incident is not a host either: the group label says whose it is.
    assert decide(target, [own], NOW, [incident("by-hand"), own]) == Keep(target.name(), 1)


def test_resolutions_of_attached_alerts_are_recorded_on_the_host() -> None:
    firing = only_target(wire_alert("a"))
    host = incident("by-hand", phase="Verifying", alerts=[*firing.records, record("x")])
    resolved = only_target(wire_alert("a", status="resolved", ends=9))
    decision = decide(resolved, [], NOW, [host])
    assert isinstance(decision, Patch) and decision.attached
    assert [
        (a["fingerprint"], a["status"]) for a in decision.patch["spec"]["source"]["alerts"]
    ] == [
        ("a", "resolved"),
        ("x", "firing"),
    ]
    assert decision.patch["spec"]["source"]["resolvedAt"] is None  # x still fires
    # A host whose phase ended but whose alerts still fire keeps them, like an own episode.
    ended = incident("by-hand", phase="Resolved", alerts=list(firing.records))
    assert isinstance(decide(resolved, [], NOW, [ended]), Patch)
    # Resolved alerts of a group that is nowhere: skipped, not attached.
    assert isinstance(decide(resolved, [], NOW, [incident("unrelated")]), Skip)


def test_a_refire_after_the_host_closed_opens_the_groups_own_incident() -> None:
    target = only_target(wire_alert("a", starts=90))
    closed_host = incident("by-hand", phase="Resolved", alerts=[record("a", "resolved")])
    closed_host["spec"]["source"]["resolvedAt"] = at(5)
    decision = decide(target, [], NOW, [closed_host])
    assert isinstance(decision, Create) and decision.episode == 1
    stale = only_target(wire_alert("a", starts=0))
    assert isinstance(decide(stale, [], NOW, [closed_host]), Keep)


def test_counts_of_what_was_left_out_are_patched_per_group() -> None:
    target = only_target(wire_alert("a"), truncatedAlerts=3)
    quiet = only_target(wire_alert("a"))  # the same group, nothing truncated
    current = existing(quiet, alerts=list(target.records))
    decision = decide(target, [current], NOW)
    assert isinstance(decision, Patch)
    annotation = decision.patch["metadata"]["annotations"][ANNOTATION_DROPPED]
    assert read_dropped({ANNOTATION_DROPPED: annotation}) == {
        target.group_label: Dropped(target.group_label, truncated_alerts=3)
    }
    # Another group's count on the same Incident is kept as it is.
    others = {"other": Dropped("other", alerts=2)}
    current["metadata"]["annotations"] = {
        ANNOTATION_DROPPED: dropped_annotation(
            {**others, target.group_label: Dropped(target.group_label, truncated_alerts=3)}
        )
    }
    assert isinstance(decide(target, [current], NOW), Keep)
    # Nothing truncated any more: the group's entry goes.
    patched = decide(quiet, [current], NOW)
    assert isinstance(patched, Patch)
    assert read_dropped(patched.patch["metadata"]["annotations"]) == others


def test_alerts_beyond_the_cap_are_counted_on_a_merge() -> None:
    limits = StorageLimits(max_alerts=2)
    target = replace(
        only_target(wire_alert("b", starts=5), wire_alert("c", starts=6)), limits=limits
    )
    current = existing(target, alerts=[record("a", starts=9)])
    decision = decide(target, [current], NOW)
    assert isinstance(decision, Patch)
    assert len(decision.patch["spec"]["source"]["alerts"]) == 2
    assert decision.dropped == 1
    [entry] = read_dropped(decision.patch["metadata"]["annotations"]).values()
    assert entry.alerts == 1
