"""What an action (or its revert) did, as the executor reports it to the domain."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

OutcomeState = Literal["Applied", "Failed", "Skipped"]


@dataclass(frozen=True)
class ActionOutcome:
    state: OutcomeState
    message: str
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    # True when the target already carried this action's record: applied by an earlier run
    # of the operator that stopped before writing the Incident's status.
    recovered: bool = False
    # A transient failure (conflict, API unavailable): the same step is tried again later.
    retryable: bool = False
