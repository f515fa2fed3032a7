"""One Kubernetes Event per object per tick: what a tick noted, summed up (every Event is a
write; the status timeline keeps each note)."""

from __future__ import annotations

from mitigator.domain.lifecycle import Event, summarize
from mitigator.metrics.pods import status_health
from mitigator.models.evidence import PodHealth


def test_no_note_no_event_and_one_note_is_posted_as_it_is() -> None:
    assert summarize([]) is None
    note = Event("Normal", "Verifying", "rollout complete; checking recovery for 10s")
    assert summarize([note]) == note


def test_several_notes_are_named_by_the_most_important_and_all_kept_in_the_message() -> None:
    notes = [
        Event("Normal", "Detected", "incident on Deployment web (manual)"),
        Event("Normal", "Classified", "evidence says P1: error rate 20% > 5%"),
        Event("Normal", "Planned", "plan from spec.actions of policy runbooks: 0-rollback"),
        Event("Normal", "ActionStarted", "step 0-rollback: rollback {}"),
        Event("Normal", "ActionApplied", "rolled back web from revision 2 to 1", on_target=True),
    ]
    event = summarize(notes)
    assert event is not None
    assert (event.type, event.reason) == ("Normal", "ActionApplied")
    assert event.message.startswith("rolled back web from revision 2 to 1")
    for note in notes[:-1]:
        assert f"{note.reason}: {note.message}" in event.message
    # In the order they happened.
    assert event.message.index("Detected:") < event.message.index("Planned:")


def test_a_warning_names_the_event_and_makes_it_a_warning() -> None:
    notes = [
        Event("Normal", "Resolved", "verified recovered after step 0-scale"),
        Event("Warning", "Reverted", "revert of 0-scale: Conflict", on_target=False),
    ]
    event = summarize(notes)
    assert event is not None
    assert (event.type, event.reason) == ("Warning", "Reverted")


def test_status_counts_come_from_the_deployment_without_its_pods() -> None:
    deployment = {
        "metadata": {"generation": 4},
        "spec": {"replicas": 3},
        "status": {
            "observedGeneration": 4,
            "replicas": 3,
            "updatedReplicas": 3,
            "availableReplicas": 3,
            "readyReplicas": 3,
        },
    }
    assert status_health(deployment) == PodHealth(desired=3, ready=3)
    rolling = {**deployment, "metadata": {"generation": 5}}
    assert status_health(rolling).rollout_in_progress
    assert status_health({"metadata": {}, "spec": {"replicas": 2}}) == PodHealth(
        desired=2, ready=0, rollout_in_progress=True
    )
