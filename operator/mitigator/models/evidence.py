"""Measurements as the measuring layers hand them to the domain."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from mitigator.models.base import JsonObject
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
    """The target's pods as the API shows them (from the pods themselves, or only the counts
    the Deployment's status gives: then crash loops, OOM kills and restarts are not read)."""

    desired: int
    ready: int
    crash_looping: int = 0
    oom_killed: int = 0
    restarts: int = 0
    # Not every replica of the current template is updated and available yet (the test
    # `kubectl rollout status` applies fails).
    rollout_in_progress: bool = False


Listing = Callable[[], list[JsonObject]]
# Runs a listing in the background: its answer (or its error) when the Future is asked.
Background = Callable[[Listing], "Future[list[JsonObject]]"]


@dataclass(frozen=True)
class PodLog:
    pod: str
    container: str
    text: str  # or why it could not be read


class EvidenceReading(Protocol):
    """The evidence's reads (the Events of the Deployment and of its pods, the pods' logs) in
    flight: `result` waits for them (and raises the first error that stops them), `drop`
    gives them up."""

    def result(self) -> tuple[list[JsonObject], list[PodLog]]: ...

    def drop(self) -> None: ...


# Starts the evidence's reads of a TargetRead (its Deployment, its pods as listed).
StartEvidence = Callable[["TargetRead"], EvidenceReading]


class _Listed:
    """One listing of a TargetRead: made at most once, when first asked for, or started early
    in the background (`prefetch`) and then waited for where it is asked for."""

    def __init__(self, listing: Listing, background: Background | None) -> None:
        self._listing = listing
        self._background = background
        self._items: list[JsonObject] | None = None
        self._in_flight: Future[list[JsonObject]] | None = None

    # Memoised by hand: functools.cached_property holds one lock for every instance of the
    # class before Python 3.12, which made the handler threads' listings wait on each other.
    def items(self) -> list[JsonObject]:
        """The listing's answer (or its error, raised here)."""
        if self._items is None:
            started, self._in_flight = self._in_flight, None
            self._items = started.result() if started is not None else self._listing()
        return self._items

    def prefetch(self) -> None:
        """Start it now in the background; nothing if it is listed, in flight, or there is
        no background (then `items` lists when asked)."""
        if self._items is None and self._in_flight is None and self._background is not None:
            self._in_flight = self._background(self._listing)

    def future(self) -> Future[list[JsonObject]]:
        """The listing as a Future: already listed, in flight, or started now (listed here
        and now without a background)."""
        self.prefetch()
        if self._items is None and self._in_flight is not None:
            return self._in_flight
        listed: Future[list[JsonObject]] = Future()
        try:
            listed.set_result(self.items())
        except Exception as exc:  # as a background listing would carry it
            listed.set_exception(exc)
        return listed


class TargetRead:
    """The target's objects as one tick read them: the Deployment, and its ReplicaSets and
    pods, each listed at most once and only when something asks for them (or started early,
    in the background, beside other reads: `prefetch_*`). The executor acts on this read
    rather than reading again: its write tests what was read, so a read that is no longer
    current fails the write instead of deciding it."""

    def __init__(
        self,
        deployment: JsonObject,
        *,
        list_replica_sets: Listing,
        list_pods: Listing,
        background: Background | None = None,
        start_evidence: StartEvidence | None = None,
    ) -> None:
        self.deployment = deployment
        self._replica_sets = _Listed(list_replica_sets, background)
        self._pods = _Listed(list_pods, background)
        self._start_evidence = start_evidence
        self._evidence: EvidenceReading | None = None
        self._written = False

    @property
    def current(self) -> bool:
        """Not yet written through: after a write based on it, the next one reads again
        rather than fail its test against our own change."""
        return not self._written

    def written(self) -> None:
        self._written = True

    @property
    def replica_sets(self) -> list[JsonObject]:
        return self._replica_sets.items()

    @property
    def pods(self) -> list[JsonObject]:
        return self._pods.items()

    def prefetch_pods(self) -> None:
        """Start listing the pods now, in the background, so that the tick's next reads
        (Prometheus) overlap it; `pods` then waits for that listing (and raises its error).
        Without a background here, nothing: `pods` lists them when asked."""
        self._pods.prefetch()

    def prefetch_replica_sets(self) -> None:
        """As `prefetch_pods`, for the ReplicaSets (a rollback's revisions)."""
        self._replica_sets.prefetch()

    def pods_listing(self) -> Future[list[JsonObject]]:
        """The pods as a Future (already listed, in flight, or started now), so that reads
        about each pod can follow the listing without a thread waiting on it."""
        return self._pods.future()

    def prefetch_evidence(self) -> None:
        """Start the evidence's reads now (a step that replaces pods may follow), so that
        they overlap the tick's other reads; `evidence` hands them over. Nothing without a
        way to read evidence (then `evidence` has nothing either)."""
        if self._evidence is None and self._start_evidence is not None:
            self._evidence = self._start_evidence(self)

    def evidence(self) -> EvidenceReading | None:
        """The evidence's reads of this read: those prefetched (handed over once), else
        started now; None when this read has no way to read evidence."""
        started, self._evidence = self._evidence, None
        if started is None and self._start_evidence is not None:
            started = self._start_evidence(self)
        return started


class TargetDetail(Protocol):
    """What a snapshot reads only when asked: the pods (crash loops, OOM kills) and the
    ReplicaSets (when the target last rolled out)."""

    @property
    def read(self) -> TargetRead: ...

    def pod_health(self) -> PodHealth: ...

    def last_rollout_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class TargetSnapshot:
    """One read of the target, so a tick does not read the same objects several times."""

    exists: bool
    uid: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    # The counts the Deployment's status gives (desired, ready, rollout in progress): enough
    # for the rollout wait and verification. `pod_health()` adds what only the pods say.
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
    # What is read only on demand (None: everything above is all there is, e.g. a fake).
    detail: TargetDetail | None = field(default=None, compare=False, repr=False)

    def pod_health(self) -> PodHealth | None:
        """Pod-level health (crash-looping and OOM-killed pods, restarts): lists the pods,
        once per snapshot."""
        return self.detail.pod_health() if self.detail is not None else self.pods

    def prefetch_pod_health(self) -> None:
        """Start listing the pods that `pod_health` will read, beside the tick's next reads."""
        if self.detail is not None:
            self.detail.read.prefetch_pods()

    def prefetch_for_steps(self, *, replica_sets: bool, evidence: bool) -> None:
        """Start, beside the tick's next reads, what a step that may follow reads: the
        ReplicaSets (a rollback's revisions), the evidence (a step that replaces pods)."""
        if self.detail is None:
            return
        read = self.detail.read
        if evidence:
            read.prefetch_pods()  # first: the reads about each pod follow it
            read.prefetch_evidence()
        if replica_sets:
            read.prefetch_replica_sets()

    def rollout_at(self) -> datetime | None:
        """When the target last rolled out: lists its ReplicaSets, once per snapshot."""
        return self.detail.last_rollout_at() if self.detail is not None else self.last_rollout_at

    @property
    def read(self) -> TargetRead | None:
        """The objects as read, for the executor to act on (None: it reads them itself)."""
        return self.detail.read if self.detail is not None else None


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
    # The Deployment it is about: a claim holder on the same target is what a newcomer
    # attaches to without waiting for a slot.
    target: str = ""
