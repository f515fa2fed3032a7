"""What kopf keeps of each watched object: the parts our handlers read, not the whole object.

kopf parses every object of its listings and watch events and holds it until the object's
handlers have run; at a start, until every index is complete (readiness.py), so every object
of the namespace at once. One part of those objects nothing here reads: `metadata.managedFields`,
the API server's record of which client set which field, often the largest part of a small
object. It is dropped as each event leaves kopf's watch, before kopf queues it. (kopf watches
Incidents and policies only; the Deployments are the operator's own watch, metadata only:
deployment_watch.py.)
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any

from kopf._cogs.clients import watching

from mitigator.handlers.kopf_hooks import wrap_once

_OBJECT_EVENTS = frozenset({None, "ADDED", "MODIFIED", "DELETED"})

Watch = Callable[..., AsyncGenerator[Any, None]]


def lean(obj: dict[str, Any]) -> None:
    """Drop, in place, what no handler reads."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)


def _leaner(original: Watch) -> Watch:
    async def continuous_watch(*, resource: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        stream = original(resource=resource, **kwargs)
        try:
            async for item in stream:
                # Errors (410 Gone and the like) and bookmarks pass as they came.
                if isinstance(item, dict) and item.get("type") in _OBJECT_EVENTS:
                    obj = item.get("object")
                    if isinstance(obj, dict):
                        lean(obj)
                yield item
        finally:
            await stream.aclose()

    return continuous_watch


def lean_watch() -> bool:
    """Install the trimming on kopf's watch (once). False if this kopf has no such function
    (it then only holds more memory)."""
    return wrap_once(watching, "continuous_watch", _leaner)
