"""The exactly-once record and the claim, kept on the target itself.

Every applied action adds an entry to the annotation `mitigator.luminamind.io/actions` of the
object it changed, in the same patch as the change: an operator restarted between the patch and
its status write finds the entry and does not apply the action again. The entry carries the
state before the change, so a revert works even if the Incident's status is lost.

The claim (`mitigator.luminamind.io/claim`) names the Incident mitigating the target. It is
taken in the patch of that Incident's first action and given up when the Incident is done.
Every write tests the records as it read them, so two writers (two Incidents, two replicas of
the operator, a restart) cannot both decide on the same state: the second one's patch fails
and it decides again on what the first one wrote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mitigator import ACTIONS_ANNOTATION, CLAIM_ANNOTATION
from mitigator.models import JsonObject, parse_timestamp
from mitigator.models.execution import AppliedRecord

MAX_RECORDS = 30


@dataclass(frozen=True)
class Claim:
    uid: str
    incident: str
    at: str


def _annotations(obj: JsonObject) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get("annotations") or {})


def records(obj: JsonObject) -> list[JsonObject]:
    raw = _annotations(obj).get(ACTIONS_ANNOTATION)
    if not raw:
        return []
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        return []  # a hand-edited annotation must not stop mitigation; it only loses history
    return [r for r in parsed if isinstance(r, dict)] if isinstance(parsed, list) else []


def applied_records(obj: JsonObject) -> tuple[AppliedRecord, ...]:
    """The records as the guardrails read them (cooldown, hourly cap)."""
    return tuple(
        AppliedRecord(
            key=str(r.get("key", "")),
            action_type=str(r.get("type", "")),
            at=parse_timestamp(str(r["at"])) if r.get("at") else None,
        )
        for r in records(obj)
    )


def find_record(obj: JsonObject, key: str) -> JsonObject | None:
    return next((r for r in records(obj) if r.get("key") == key), None)


def claim_of(obj: JsonObject) -> Claim | None:
    raw = _annotations(obj).get(CLAIM_ANNOTATION)
    try:
        parsed = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return None
    if not isinstance(parsed, dict):
        return None
    return Claim(str(parsed.get("uid", "")), str(parsed.get("incident", "")), str(parsed.get("at")))


def _pointer(annotation: str) -> str:
    return "/metadata/annotations/" + annotation.replace("~", "~0").replace("/", "~1")


def record_ops(obj: JsonObject, record: JsonObject) -> list[JsonObject]:
    """JSON-patch operations that append `record` (bounded) to the object's annotation."""
    kept = [r for r in records(obj) if r.get("key") != record["key"]][-(MAX_RECORDS - 1) :]
    return _set_annotation(obj, ACTIONS_ANNOTATION, _encode([*kept, record]))


def _encode(value: object) -> str:
    """JSON without the characters Go escapes when it writes a string (<, >, &): the API
    server compares a patch's `test` value with the stored one byte for byte, so a record
    holding "3 -> 2" would fail every later test of it and lock the target."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def claim_ops(obj: JsonObject, *, uid: str, incident: str, now_stamp: str) -> list[JsonObject]:
    """Take the claim for `incident` (kept as is when it already holds it)."""
    held = claim_of(obj)
    if held is not None and held.uid == uid:
        return []
    value = _encode({"uid": uid, "incident": incident, "at": now_stamp})
    return _set_annotation(obj, CLAIM_ANNOTATION, value)


def release_ops(obj: JsonObject, *, uid: str) -> list[JsonObject]:
    """Give the claim up if `uid` holds it, testing that it still does."""
    held = claim_of(obj)
    if held is None or held.uid != uid:
        return []
    pointer = _pointer(CLAIM_ANNOTATION)
    return [
        {"op": "test", "path": pointer, "value": _annotations(obj)[CLAIM_ANNOTATION]},
        {"op": "remove", "path": pointer},
    ]


def _set_annotation(obj: JsonObject, key: str, value: str) -> list[JsonObject]:
    if obj.get("metadata", {}).get("annotations") is None:
        return [{"op": "add", "path": "/metadata/annotations", "value": {key: value}}]
    return [{"op": "add", "path": _pointer(key), "value": value}]


def guard_ops(obj: JsonObject, paths: tuple[str, ...]) -> list[JsonObject]:
    """For an object beside the Deployment (a Service, an autoscaler), whose status others
    update all the time: test the fields we change, and our records, as read. Of two writers
    deciding on the same fields, the second one's patch fails."""
    fields = [{"op": "test", "path": path, "value": _at(obj, path)} for path in paths]
    return [*fields, *_annotation_tests(obj, (ACTIONS_ANNOTATION,))]


def _at(obj: JsonObject, path: str) -> object:
    value: object = obj
    for token in path.strip("/").split("/"):
        assert isinstance(value, dict), path
        value = value.get(token.replace("~1", "/").replace("~0", "~"))
    return value


def precondition_ops(deployment: JsonObject) -> list[JsonObject]:
    """Refuse the Deployment's patch if someone changed what we decided on since we read it.

    What we decide on is the spec and our own records: the generation moves with every spec
    change but not with the controller's status updates. Then the records and the claim, as
    read: another Incident's write changes them, so of two writers deciding on the same state
    only the first one's patch is accepted. Where there are no records yet, nothing names them
    to test, and the resourceVersion is tested instead.
    """
    metadata = deployment.get("metadata", {})
    ops = [{"op": "test", "path": "/metadata/generation", "value": metadata.get("generation")}]
    if ACTIONS_ANNOTATION not in _annotations(deployment):
        resource_version = metadata["resourceVersion"]
        return [
            *ops,
            {"op": "test", "path": "/metadata/resourceVersion", "value": resource_version},
        ]
    return [*ops, *_annotation_tests(deployment, (ACTIONS_ANNOTATION, CLAIM_ANNOTATION))]


def _annotation_tests(obj: JsonObject, keys: tuple[str, ...]) -> list[JsonObject]:
    """`test` operations for those of our annotations the object carries, as read."""
    annotations = _annotations(obj)
    return [
        {"op": "test", "path": _pointer(key), "value": annotations[key]}
        for key in keys
        if key in annotations
    ]
