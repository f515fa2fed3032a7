"""What an Incident stores of an alert group (labels per alert, label sizes, alerts per
Incident) and how what is left out is counted, per group, in the Incident's annotation; and
that what a sender wrote is clipped wherever the bridge repeats it."""

from __future__ import annotations

import json

from mitigator.bridge.grouping import map_payload
from mitigator.bridge.limits import (
    ANNOTATION_DROPPED,
    Dropped,
    StorageLimits,
    cap_labels,
    dropped_annotation,
    read_dropped,
    with_dropped,
)
from mitigator.bridge.notes import AlertNote, Reason, clip
from mitigator.bridge.payload import PayloadError, parse_payload
from tests.unit.alerts import RULES, only_target, payload, wire_alert

SMALL = StorageLimits(max_alerts=3, max_labels=4, max_label_name_bytes=8, max_label_value_bytes=6)


# ----------------------------------------------------------------- labels


def test_oversized_labels_are_left_out_and_counted() -> None:
    labels = {"ok": "v", "longname1": "v", "big": "1234567", "fits": "123456"}
    kept, dropped = cap_labels(labels, SMALL)
    assert kept == {"fits": "123456", "ok": "v"}
    assert dropped == 2


def test_sizes_are_utf8_bytes() -> None:
    kept, dropped = cap_labels({"a": "ééé", "b": "éééé"}, SMALL)  # 6 and 8 bytes
    assert kept == {"a": "ééé"}
    assert dropped == 1


def test_beyond_the_count_the_naming_and_essential_labels_are_kept_first() -> None:
    labels = {
        "aaa": "1",
        "bbb": "2",
        "ccc": "3",
        "severity": "page",
        "alertname": "X",
        "pod": "web-1",
        "namespace": "prod",
    }
    kept, dropped = cap_labels(labels, StorageLimits(max_labels=4), ("namespace", "pod"))
    assert kept == {"alertname": "X", "namespace": "prod", "pod": "web-1", "severity": "page"}
    assert dropped == 3
    # Then by name: deterministic whatever the payload's order.
    assert cap_labels(dict(reversed(labels.items())), StorageLimits(max_labels=3))[0] == {
        "aaa": "1",
        "alertname": "X",
        "severity": "page",
    }


def test_a_target_records_capped_labels_and_counts_them() -> None:
    labels = {f"extra{i:02d}": "x" for i in range(40)}
    target = map_payload(payload(wire_alert("1", **labels)), RULES).targets[0]
    [record] = target.records
    assert len(record.labels) == 32
    assert {"alertname", "namespace", "deployment"} <= set(record.labels)
    assert target.label_drops == {"1": 43 - 32}
    assert len(target.spec.source.labels) == 32


def test_beyond_the_alerts_cap_the_new_incident_counts_the_rest() -> None:
    limits = StorageLimits(max_alerts=3, max_label_value_bytes=16)
    alerts = [wire_alert(f"f{i}", starts=i, big="y" * 17) for i in range(5)]
    target = map_payload(payload(*alerts, truncatedAlerts=7), RULES, limits).targets[0]
    body = target.body()
    assert len(body["spec"]["source"]["alerts"]) == 3
    [entry] = json.loads(body["metadata"]["annotations"][ANNOTATION_DROPPED])
    # Two alerts not recorded; `big` left out of each of the three recorded; Alertmanager's 7.
    assert entry == {"group": target.group_label, "alerts": 2, "labels": 3, "truncatedAlerts": 7}


def test_nothing_left_out_no_annotation() -> None:
    body = only_target(wire_alert("1")).body()
    assert ANNOTATION_DROPPED not in body["metadata"].get("annotations", {})


# ----------------------------------------------------------------- the annotation


def test_the_annotation_round_trips_per_group() -> None:
    entries = {"g1": Dropped("g1", alerts=1), "g2": Dropped("g2", truncated_alerts=4)}
    value = dropped_annotation(entries)
    assert value is not None
    assert read_dropped({ANNOTATION_DROPPED: value}) == entries
    assert with_dropped(entries, Dropped("g1")) == {"g2": entries["g2"]}
    assert dropped_annotation({"g": Dropped("g")}) is None


def test_an_unreadable_annotation_counts_nothing() -> None:
    for value in ("{", "{}", '[{"group": 1}]', '[{"group": "g", "alerts": -1}]', "null"):
        assert read_dropped({ANNOTATION_DROPPED: value}) == {}
    assert read_dropped(None) == {}


# ----------------------------------------------------------------- clipping


def test_clip() -> None:
    assert clip("short") == "short"
    clipped = clip("A" * 5000)
    assert clipped == "A" * 200 + "… (5000 characters)"


def test_a_note_clips_what_the_sender_wrote() -> None:
    note = AlertNote("f" * 128, "A" * 5000, Reason.INVALID_ALERT, "m" * 5000, "n" * 300, "t" * 300)
    shown = note.to_json()
    assert shown["alertname"] == clip("A" * 5000)
    assert len(shown["message"]) < 1100
    assert len(shown["namespace"]) < 230 and len(shown["target"]) < 230


def test_a_5000_character_alertname_is_refused_without_being_repeated() -> None:
    mapping = map_payload(payload(wire_alert("1", alertname="A" * 5000)), RULES)
    [note] = mapping.rejected
    assert note.reason is Reason.INVALID_ALERT
    assert "A" * 201 not in json.dumps(note.to_json())
    assert note.alertname is not None and note.alertname.endswith("(5000 characters)")


def test_a_huge_label_name_in_a_payload_error_is_clipped() -> None:
    item = wire_alert("1")
    item["labels"]["L" * 5000] = 1  # not a string: the path names the label
    body = json.dumps(payload_dict(item)).encode()
    try:
        parse_payload(body)
    except PayloadError as exc:
        assert "L" * 201 not in exc.message
        assert "(5000 characters)" in exc.message or "…" in exc.message
    else:  # pragma: no cover
        raise AssertionError("accepted")


def payload_dict(*alerts: dict[str, object]) -> dict[str, object]:
    return {"version": "4", "groupKey": "{}:{}", "status": "firing", "alerts": list(alerts)}
