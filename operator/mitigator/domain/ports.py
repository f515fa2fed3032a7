"""What the domain needs from the outside world, as Protocols the I/O layers implement.

The values crossing the boundary (MetricSample, PodHealth) live in mitigator.models.evidence,
the bottom layer, so that the measuring layers below the domain can build them too.
"""

import math
from collections.abc import Mapping, Sequence
from typing import Protocol

from mitigator.domain.selection import PolicyCandidate
from mitigator.models import PrometheusAuth
from mitigator.models.evidence import Contender, MetricSample, TargetSnapshot
from mitigator.models.execution import (
    ActionOutcome,
    ActionRequest,
    GitOpsRequest,
    ReleaseRequest,
    RevertRequest,
)


class MetricsProvider(Protocol):
    """Runs an instant PromQL query that yields one number.

    Implementations answer rather than raise: a transport failure is `unreachable`, an empty
    result (or NaN, 0/0 over no traffic) `no_data`, a bad query `error`.
    """

    def query(self, promql: str) -> MetricSample: ...


def usable_value(sample: MetricSample) -> float | None:
    """The sample's value if it can be trusted as a measurement, else None.

    Only an `ok` sample with a number counts; NaN is refused here too, because a NaN compares
    false with every threshold and would otherwise pass for healthy.
    """
    if sample.status != "ok" or sample.value is None or math.isnan(sample.value):
        return None
    return sample.value


def describe_sample(sample: MetricSample) -> str:
    """Why a sample has no usable value, e.g. "unreachable (connection refused)"."""
    if usable_value(sample) is not None:
        return "ok"
    status = "no_data" if sample.status == "ok" else sample.status  # an ok NaN is no data
    return f"{status} ({sample.detail})" if sample.detail else status


class World(Protocol):
    """Everything the lifecycle needs from outside: reads of the target, the metrics and the
    policies, and the two writes (apply, revert). Fakes of it make lifecycle tests fast."""

    def snapshot(self, namespace: str, name: str) -> TargetSnapshot: ...

    def target_labels(self, namespace: str, name: str) -> Mapping[str, str] | None:
        """The target's labels as last seen, without a request (None: not known here)."""
        ...

    def metrics(
        self, prometheus_url: str | None, auth: PrometheusAuth | None = None
    ) -> MetricsProvider:
        """The provider for `prometheus_url` (None: the operator's), with the policy's
        credentials by reference when it names them."""
        ...

    def policies(self, namespace: str) -> Sequence[PolicyCandidate]: ...

    def mitigator_of(self, namespace: str, target: str, *, me: str) -> str | None:
        """The name of another live Incident holding the claim on `target` (an action of it
        applied and it not finished), as far as this process knows; None if none."""
        ...

    def request_slot(self, namespace: str, me: Contender, *, limit: int) -> str | None:
        """A turn under the concurrency limit (None), or why not yet; see
        `guardrails.slot_refusal`, which implementations apply atomically."""
        ...

    def apply(self, request: ActionRequest) -> ActionOutcome: ...

    def revert(self, request: RevertRequest) -> ActionOutcome: ...

    def release(self, request: ReleaseRequest) -> ActionOutcome: ...

    def suspend_gitops(self, request: GitOpsRequest) -> ActionOutcome: ...

    def restore_gitops(self, request: GitOpsRequest) -> ActionOutcome: ...
