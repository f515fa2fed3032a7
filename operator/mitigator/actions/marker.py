"""The exactly-once record kept on the target itself.

Every applied action adds an entry to the annotation ``mitigator.luminamind.io/actions`` of
the object it changed, in the same patch as the change: an operator restarted between the
patch and its status write finds the entry and does not apply the action again. The entry
carries the state before the change, so a revert works even if the Incident's status is lost.
"""

from __future__ import annotations

import json

from mitigator import ACTIONS_ANNOTATION
from mitigator.models import JsonObject

MAX_RECORDS = 30


def records(obj: JsonObject) -> list[JsonObject]:
    raw = (obj.get("metadata", {}).get("annotations") or {}).get(ACTIONS_ANNOTATION)
    if not raw:
        return []
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        return []  # a hand-edited annotation must not stop mitigation; it only loses history
    return [r for r in parsed if isinstance(r, dict)] if isinstance(parsed, list) else []


def find_record(obj: JsonObject, key: str) -> JsonObject | None:
    return next((r for r in records(obj) if r.get("key") == key), None)


def _escape(pointer_token: str) -> str:
    return pointer_token.replace("~", "~0").replace("/", "~1")


def record_ops(obj: JsonObject, record: JsonObject) -> list[JsonObject]:
    """JSON-patch operations that append ``record`` (bounded) to the object's annotation."""
    kept = [r for r in records(obj) if r.get("key") != record["key"]][-(MAX_RECORDS - 1) :]
    value = json.dumps([*kept, record], separators=(",", ":"), sort_keys=True)
    if obj.get("metadata", {}).get("annotations") is None:
        return [
            {"op": "add", "path": "/metadata/annotations", "value": {ACTIONS_ANNOTATION: value}}
        ]
    return [
        {
            "op": "add",
            "path": f"/metadata/annotations/{_escape(ACTIONS_ANNOTATION)}",
            "value": value,
        }
    ]


def precondition_ops(obj: JsonObject) -> list[JsonObject]:
    """Refuse the patch if someone changed what we decided on since we read it.

    A Deployment is tested on its generation, which moves with every spec change but not
    with the controller's status updates (testing resourceVersion would fail on those for no
    reason). A Service has no generation; its selector, the field we switch, is tested.
    """
    if "generation" in obj.get("metadata", {}):
        return [
            {"op": "test", "path": "/metadata/generation", "value": obj["metadata"]["generation"]}
        ]
    return [{"op": "test", "path": "/spec/selector", "value": obj.get("spec", {}).get("selector")}]
