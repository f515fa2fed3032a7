"""Whether a tick may work from the status its timer was handed. A timer sees the body of
the latest watch event: right after this process wrote a status, that body can still be the
one from before the write, and a tick working from it would decide again what was decided.
So a tick waits while the stored status is behind this process's last write (its
`sequence`), which normally takes a tick or two.

Waiting forever would be wrong: when the store itself lost the writes (etcd restored from a
backup, a status replaced by hand, a status patch that never landed), the stored status stays
behind for good and the Incident would never move again in this process. After
`LOST_AFTER_SECONDS` the stored status is taken as the truth. That is safe for the actions: a
step the stored status does not know of is found by its record on the target (exactly once),
or applied again if the target lost that record too."""

from __future__ import annotations

from collections.abc import MutableMapping
from enum import Enum
from typing import Any

# Far longer than a watch event takes to arrive, even on a loaded API server.
LOST_AFTER_SECONDS = 15.0


class Freshness(Enum):
    FRESH = "fresh"  # the stored status includes this process's last write
    BEHIND = "behind"  # not yet: skip this tick
    LOST = "lost"  # behind for too long: the store lost the writes; go on from it


def freshness(
    memo: MutableMapping[str, Any],
    *,
    stored: int,
    now: float,
    lost_after: float = LOST_AFTER_SECONDS,
) -> Freshness:
    """`memo` is the object's (kopf's per-object memo): its `sequence` is the last write of this
    process, `behind_since` when the stored status was first seen behind it (monotonic)."""
    written = int(memo.get("sequence", 0))
    if stored >= written:
        memo.pop("behind_since", None)
        return Freshness.FRESH
    since = memo.setdefault("behind_since", now)
    if now - since < lost_after:
        return Freshness.BEHIND
    memo["sequence"] = stored
    memo.pop("behind_since", None)
    return Freshness.LOST
