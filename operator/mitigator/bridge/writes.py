"""The bridge's write of an Incident that exists, as a JSON patch guarded by `test`
operations on what the decision was made from (the spec, and the annotations when it changes
them), rather than a merge patch guarded by the resourceVersion: the operator writes the
Incident's status every tick, and under a storm a resourceVersion guard made nearly every
bridge write a conflict, to be read and decided again. Pure.

A concurrent change of the spec (another bridge replica attaching alerts, a person resolving
it) still fails the write, and the alerts are decided again on the Incident as it is."""

from __future__ import annotations

from typing import Any

from mitigator.bridge.batches import apply_patch
from mitigator.models.base import JsonObject

JsonPatch = list[dict[str, Any]]


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def guarded_patch(base: JsonObject, merge: JsonObject) -> JsonPatch | None:
    """`merge` (a merge patch of `base`, as `episodes` decides it) as a JSON patch that tests
    `base`'s spec (and annotations, when it changes them); None when it cannot be guarded
    that way (annotations to change on an Incident that has none: absence is not testable),
    and the merge patch with its resourceVersion must do."""
    spec = base.get("spec") or {}
    ops: JsonPatch = [{"op": "test", "path": "/spec", "value": spec}]
    changes: JsonPatch = []
    annotations = (merge.get("metadata") or {}).get("annotations")
    if annotations:
        current = (base.get("metadata") or {}).get("annotations")
        if not current:
            return None
        ops.append({"op": "test", "path": "/metadata/annotations", "value": current})
        for key, value in annotations.items():
            path = f"/metadata/annotations/{_pointer(key)}"
            if value is not None:
                changes.append({"op": "add", "path": path, "value": value})
            elif key in current:
                changes.append({"op": "remove", "path": path})
    if merge.get("spec") is not None:
        changes.append(
            {"op": "replace", "path": "/spec", "value": apply_patch(spec, merge["spec"])}
        )
    return [*ops, *changes]
