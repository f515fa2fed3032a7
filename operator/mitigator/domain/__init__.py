"""The operator's pure logic: classify, plan, verify, guard, escalate, record.

No I/O and no clock: everything it needs (evidence, `now`) is passed in, so every decision
can be tested without a cluster. It imports nothing but the standard library, pydantic and
mitigator.models (import-linter holds it to that). The handlers use the lifecycle's `advance`
through the ports below; each rule lives in the module named after its job.
"""

from mitigator.domain.lifecycle import Advance, Event, IncidentView, advance
from mitigator.domain.ports import MetricsProvider, World

__all__ = ["Advance", "Event", "IncidentView", "MetricsProvider", "World", "advance"]
