"""The records on the target: what the write tests must match the stored bytes."""

from __future__ import annotations

from mitigator import ACTIONS_ANNOTATION
from mitigator.actions import marker


def _deployment(annotations: dict[str, str] | None = None) -> dict[str, object]:
    return {"metadata": {"generation": 3, "resourceVersion": "9", "annotations": annotations}}


def test_records_hold_no_character_go_would_escape() -> None:
    record = {"key": "u/0-scale", "message": "reverted scale of web: 3 -> 2 & <done>"}
    [op] = marker.record_ops(_deployment({}), record)
    assert not set("<>&") & set(op["value"])
    stored = _deployment({ACTIONS_ANNOTATION: op["value"]})
    assert marker.records(stored) == [record]  # the text still decodes to what was said


def test_the_first_record_tests_the_resource_version_later_ones_the_records() -> None:
    first = marker.precondition_ops(_deployment({"other": "x"}))
    assert {"op": "test", "path": "/metadata/resourceVersion", "value": "9"} in first
    [op] = marker.record_ops(_deployment({}), {"key": "u/0-restart"})
    later = marker.precondition_ops(_deployment({ACTIONS_ANNOTATION: op["value"]}))
    assert {
        "op": "test",
        "path": "/metadata/annotations/mitigator.luminamind.io~1actions",
        "value": op["value"],
    } in later
    assert all(o["path"] != "/metadata/resourceVersion" for o in later)


def test_a_claim_is_released_only_by_its_holder() -> None:
    [op] = marker.claim_ops(_deployment({}), uid="u1", incident="first", now_stamp="t")
    claimed = _deployment({op["path"].rsplit("/", 1)[-1].replace("~1", "/"): op["value"]})
    assert marker.claim_of(claimed) == marker.Claim("u1", "first", "t")
    assert marker.release_ops(claimed, uid="u2") == []
    assert [o["op"] for o in marker.release_ops(claimed, uid="u1")] == ["test", "remove"]
    assert marker.claim_ops(claimed, uid="u1", incident="first", now_stamp="later") == []
