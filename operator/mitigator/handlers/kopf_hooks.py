"""One way to change a kopf internal: wrap the function where kopf looks it up, once.

The hooks (readiness.py, idle_bodies.py, lean_watch.py) replace a function of kopf 1.45.2 by a
wrapper around it. Each does so at most once per process (the operator's start and the tests
both install them), and not at all where this kopf has no such function: kopf then works as
it is, only slower or larger, never broken.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_WRAPPED = "_mitigator_wrapped"


def wrap_once(owner: object, name: str, wrap: Callable[[Any], Any]) -> bool:
    """Replace `owner.name` by `wrap(owner.name)` unless done before. False, and nothing
    changed, if `owner` has no such attribute."""
    original = getattr(owner, name, None)
    if original is None:
        return False
    if not getattr(original, _WRAPPED, False):
        wrapped = wrap(original)
        setattr(wrapped, _WRAPPED, True)
        setattr(owner, name, wrapped)
    return True
