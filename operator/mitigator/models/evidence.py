"""Measurements as the measuring layers hand them to the domain."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from mitigator.models.gitops import GitOpsOwner

SampleStatus = Literal["ok", "no_data", "unreachable", "error"]


@dataclass(frozen=True)
class MetricSample:
    """One measured number, or why there is none. Only ``ok`` carries a value."""

    status: SampleStatus
    value: float | None = None
    detail: str = ""

    @classmethod
    def ok(cls, value: float) -> MetricSample:
        return cls("ok", value)

    @classmethod
    def no_data(cls, detail: str) -> MetricSample:
        return cls("no_data", None, detail)

    @classmethod
    def unreachable(cls, detail: str) -> MetricSample:
        return cls("unreachable", None, detail)

    @classmethod
    def error(cls, detail: str) -> MetricSample:
        return cls("error", None, detail)

    @property
    def known(self) -> bool:
        return self.status == "ok" and self.value is not None


@dataclass(frozen=True)
class PodHealth:
    """The target's pods as the API shows them."""

    desired: int
    ready: int
    crash_looping: int = 0
    oom_killed: int = 0
    restarts: int = 0
    # Not every replica of the current template is updated and available yet (the test
    # `kubectl rollout status` applies fails).
    rollout_in_progress: bool = False


@dataclass(frozen=True)
class TargetSnapshot:
    """One read of the target, so a tick does not read the same objects several times."""

    exists: bool
    uid: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    pods: PodHealth | None = None
    last_rollout_at: datetime | None = None
    revision: int | None = None
    images: dict[str, str] = field(default_factory=dict)
    # What the actions change, to tell whether one still holds (or was undone by another).
    replicas: int | None = None
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    restarted_at: str | None = None
    gitops: GitOpsOwner | None = None
    # The keys of the records mitigator left on the target (its own actions and reverts).
    record_keys: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Contender:
    """A live Incident of a namespace as the concurrency limit sees it."""

    uid: str
    name: str
    detected_at: datetime | None
    # An action applied and the incident not finished: it holds a slot.
    holds_claim: bool
    # Mitigating without an action applied yet: it wants a slot.
    waiting: bool
