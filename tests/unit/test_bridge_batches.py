"""Group commit, the pure part: alert groups of one target folded into one merge patch give
the Incident what writing them one at a time would, and each group the same decision; what
the batch cannot carry is left for later, in order."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mitigator.bridge.batches import apply_patch, compose, fold
from mitigator.bridge.episodes import Keep, Patch, decide
from mitigator.bridge.grouping import TargetAlerts
from mitigator.bridge.limits import StorageLimits, read_dropped
from mitigator.bridge.writes import guarded_patch
from tests.unit.alerts import NOW, only_target, wire_alert


def group(index: int, fingerprint: str | None = None) -> TargetAlerts:
    return only_target(wire_alert(fingerprint or f"f{index}"), key=f"{{}}:{{storm={index}}}")


def host(*, phase: str = "Mitigating", name: str = "kubectl-0") -> dict[str, Any]:
    """A person's Incident for the target, as the API server returns it."""
    return {
        "metadata": {"name": name, "resourceVersion": "7", "creationTimestamp": "2025-11-26"},
        "spec": {"target": {"kind": "Deployment", "name": "web"}},
        "status": {"phase": phase},
    }


def one_at_a_time(targets: list[TargetAlerts], incident: dict[str, Any]) -> dict[str, Any]:
    """What writing each group alone gives the Incident."""
    for target in targets:
        decision = decide(target, [], NOW, [incident])
        if isinstance(decision, Patch):
            incident = apply_patch(incident, decision.patch)
    return incident


def fingerprints(incident: dict[str, Any]) -> list[str]:
    return [alert["fingerprint"] for alert in incident["spec"]["source"]["alerts"]]


def test_groups_attaching_to_the_open_incident_are_one_patch_as_if_one_at_a_time() -> None:
    targets = [group(i) for i in range(5)]
    incident = host()
    folded = fold(targets, [], [incident], NOW, complete=False)
    assert folded.name == "kubectl-0" and folded.rest == ()
    assert [index for index, _ in folded.carried] == [0, 1, 2, 3, 4]
    assert all(isinstance(d, Patch) and d.attached for _, d in folded.carried)
    assert folded.patch is not None
    written = apply_patch(incident, folded.patch)
    assert written == one_at_a_time(targets, incident) == folded.incident
    assert fingerprints(written) == ["f0", "f1", "f2", "f3", "f4"]
    assert folded.recorded == 5
    # Guarded by the version it was decided on: a concurrent write makes it a conflict.
    assert folded.patch["metadata"]["resourceVersion"] == "7"
    assert incident == host(), "what was read (or remembered) is not changed"


def test_a_resend_in_the_same_batch_is_kept_and_carried() -> None:
    first, again = group(1), group(1)
    folded = fold([first, group(2), again], [], [host()], NOW, complete=False)
    decisions = dict(folded.carried)
    assert isinstance(decisions[0], Patch) and isinstance(decisions[2], Keep)
    assert folded.recorded == 2


def test_over_the_cap_the_groups_left_out_are_counted_in_the_one_patch() -> None:
    limits = StorageLimits(max_alerts=2)
    targets = [replace(group(i), limits=limits) for i in range(4)]
    folded = fold(targets, [], [host()], NOW, complete=False)
    assert folded.patch is not None
    written = apply_patch(host(), folded.patch)
    assert written == one_at_a_time(targets, host())
    assert fingerprints(written) == ["f0", "f1"]
    counted = read_dropped(written["metadata"]["annotations"])
    assert {entry.group: entry.alerts for entry in counted.values()} == {
        targets[2].group_label: 1,
        targets[3].group_label: 1,
    }
    assert [d.dropped for _, d in folded.carried] == [0, 0, 1, 1]


def test_what_the_read_does_not_settle_is_left_for_later() -> None:
    # The Incident the bridge wrote lately is over (another mitigates): whether to create or
    # attach elsewhere needs the whole namespace read, so nothing is carried.
    folded = fold([group(1), group(2)], [], [host(phase="Suppressed")], NOW, complete=False)
    assert (folded.name, folded.carried, folded.rest) == (None, (), (0, 1))


def test_a_group_whose_incident_is_another_waits_and_so_do_its_later_requests() -> None:
    # Group 3 has its own open Incident (newer than the person's): its alerts go there, in
    # another write; its second request waits behind its first.
    own = group(3).body()
    own["metadata"].update(resourceVersion="3", creationTimestamp="2025-11-27")
    own["status"] = {"phase": "Triaging"}
    targets = [group(1), group(3, "x"), group(2), group(3, "y")]
    folded = fold(targets, [own], [host()], NOW, complete=True)
    assert folded.name == "kubectl-0"
    assert [index for index, _ in folded.carried] == [0, 2]
    assert folded.rest == (1, 3)


def test_a_group_that_creates_is_left_to_be_written_alone() -> None:
    folded = fold([group(1), group(2)], [], [], NOW, complete=True)
    assert (folded.name, folded.carried, folded.rest) == (None, (), (0, 1))


def test_nothing_new_is_no_write() -> None:
    incident = apply_patch(host(), fold([group(1)], [], [host()], NOW, complete=False).patch)
    folded = fold([group(1), group(1)], [], [incident], NOW, complete=False)
    assert folded.patch is None
    assert [type(d) for _, d in folded.carried] == [Keep, Keep]


def test_composed_merge_patches_apply_as_in_sequence() -> None:
    document = {"a": {"b": 1, "c": 2}, "d": [1], "e": "x"}
    first = {"a": {"b": None, "f": 3}, "d": [2]}
    then = {"a": {"c": 4}, "e": None, "g": {"h": None}}
    assert apply_patch(document, compose(first, then)) == apply_patch(
        apply_patch(document, first), then
    )
    assert document == {"a": {"b": 1, "c": 2}, "d": [1], "e": "x"}


def test_the_write_tests_what_it_was_decided_on_not_the_resource_version() -> None:
    incident = host()
    incident["metadata"]["annotations"] = {"kopf.zalando.org/x": "1"}
    limits = StorageLimits(max_alerts=1)
    folded = fold(
        [replace(group(i), limits=limits) for i in range(2)], [], [incident], NOW, complete=False
    )
    assert folded.patch is not None and folded.base == incident
    ops = guarded_patch(incident, folded.patch)
    assert ops is not None
    assert ops[:2] == [
        {"op": "test", "path": "/spec", "value": incident["spec"]},
        {"op": "test", "path": "/metadata/annotations", "value": {"kopf.zalando.org/x": "1"}},
    ]
    assert not any(op["path"] == "/metadata/resourceVersion" for op in ops)
    changed = {op["path"]: op.get("value") for op in ops[2:]}
    assert changed["/spec"] == apply_patch(incident, folded.patch)["spec"]
    assert changed["/metadata/annotations/mitigator.luminamind.io~1bridge-dropped"]
    # Annotations to add to an Incident that has none: absence is not testable.
    assert guarded_patch(host(), folded.patch) is None
