"""Leader election on a coordination.k8s.io/v1 Lease, the way controller-runtime does it.

Every replica runs kopf (standalone: kopf's peering decides nothing) and the bridge; only the
replica whose `acting()` is true runs the incident lifecycle, escalation and policy status.

- A candidate takes the Lease when it is free (no holder, or released), or when the record
  it observed has not changed for `lease_duration` on its OWN monotonic clock (no trust in
  other replicas' wall clocks).
- The holder renews every `retry_period`. Its `acting()` is computed at the moment of asking:
  true only while less than `renew_deadline` has passed since the start of its last
  successful renewal. Since renew_deadline < lease_duration, and a standby starts counting
  only once it has seen that renewal, the old leader has stopped acting before anyone can
  take the Lease: never two actors. A process frozen (SIGSTOP, a long GC, a partition) and
  resumed finds `acting()` false at once, before its elector thread has run again.
- Every write of the Lease carries the resourceVersion read: a lost race is a Conflict.
- On shutdown the holder stops acting first, then releases the Lease so a standby takes over
  at its next retry instead of after a whole lease duration.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from mitigator.k8s import AlreadyExists, Conflict, KubeClient, NotFound
from mitigator.models import JsonObject
from mitigator.observability import metrics
from mitigator.settings import OperatorSettings

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
_GLOB = set("*?[")

log = logging.getLogger("mitigator.leadership")


class Leadership(Protocol):
    identity: str

    def acting(self) -> bool: ...


class NotActing(RuntimeError):
    """Raised before a write when this replica does not (or no longer) hold the Lease."""


class AlwaysActing:
    """Leader election off: a single replica that always acts."""

    identity = "unelected"

    def acting(self) -> bool:
        return True


def lease_namespace(settings: OperatorSettings, watched: list[str]) -> str:
    """The setting; else the pod's own namespace; else the one namespace watched (when it is
    a plain name); else `default` (exists in every cluster)."""
    if settings.lease_namespace:
        return settings.lease_namespace
    if SERVICE_ACCOUNT_NAMESPACE.exists():
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    if len(watched) == 1 and not _GLOB & set(watched[0]):
        return watched[0]
    return "default"


def default_identity() -> str:
    # The pod name (hostname) for people; a uuid so that a restarted pod is a new candidate.
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def _micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """One daemon thread that acquires and renews the Lease; `acting()` for everyone else."""

    def __init__(
        self,
        kube: KubeClient,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: int,
        renew_deadline: float,
        retry_period: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._clock = clock
        # Monotonic time just before the last write of the Lease that succeeded; None: never.
        self._renewed_at: float | None = None
        self._observed_version: str | None = None
        self._observed_at = 0.0
        self._stopped = threading.Event()
        self._reported = False
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: OperatorSettings, *, watched: list[str]) -> LeaderElector:
        return cls(
            KubeClient.from_environment(),
            namespace=lease_namespace(settings, watched),
            name=settings.lease_name,
            identity=settings.leader_identity or default_identity(),
            lease_duration=settings.lease_duration_seconds,
            renew_deadline=settings.renew_deadline_seconds,
            retry_period=settings.retry_period_seconds,
        )

    # ------------------------------------------------------------ the gate

    def acting(self) -> bool:
        renewed = self._renewed_at
        if self._stopped.is_set() or renewed is None:
            return False
        return self._clock() - renewed < self.renew_deadline

    # ------------------------------------------------------------ the loop

    def start(self) -> None:
        log.info(
            "leader election: Lease %s/%s as %s (duration %ss, renew deadline %ss, retry %ss)",
            self.namespace,
            self.name,
            self.identity,
            self.lease_duration,
            self.renew_deadline,
            self.retry_period,
        )
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop acting at once, then give the Lease up if the API server still names us.

        Asked of the API server, not of our last renewal: on a loaded machine the last
        renewal can be older than the renew deadline when the shutdown comes (we already
        stopped acting), while the Lease still names us; not releasing it would make the
        standby wait for it to expire. `_release` re-reads it and replaces it only if it
        still names us and nobody wrote it since."""
        ever_held = self._renewed_at is not None
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=self.renew_deadline)
        if ever_held:
            self._release()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self.try_once()
            except Exception as exc:  # an unreachable API server is no crash
                log.warning("leader election: %s/%s: %s", self.namespace, self.name, exc)
            self._report()
            self._stopped.wait(self.retry_period)

    def _report(self) -> None:
        acting = self.acting()
        metrics.set_leader(acting)
        if acting and not self._reported:
            log.info("leader election: %s acquired Lease %s/%s; acting", *self._names())
        elif self._reported and not acting:
            log.warning(
                "leader election: %s stopped acting: Lease %s/%s not renewed within %ss",
                *self._names(),
                self.renew_deadline,
            )
        self._reported = acting

    def _names(self) -> tuple[str, str, str]:
        return self.identity, self.namespace, self.name

    def try_once(self) -> bool:
        """One attempt to acquire or renew; true when this replica holds the Lease now."""
        timeout = self.renew_deadline
        try:
            lease = self.kube.read_lease(self.namespace, self.name, timeout=timeout)
        except NotFound:
            return self._create(timeout)
        spec: dict[str, Any] = dict(lease.get("spec") or {})
        holder = str(spec.get("holderIdentity") or "")
        version = str(lease["metadata"].get("resourceVersion"))
        if version != self._observed_version:
            self._observed_version = version
            self._observed_at = self._clock()
        if holder and holder != self.identity:
            duration = int(spec.get("leaseDurationSeconds") or self.lease_duration)
            if self._clock() < self._observed_at + duration:
                return False
            log.info("leader election: Lease held by %s expired; taking it", holder)
        # The acting window starts no later than the renewTime written (both taken here):
        # `renewTime + renew deadline` bounds when this replica stops acting.
        before = self._clock()
        now = _micro_time(datetime.now(UTC))
        spec.update(
            holderIdentity=self.identity,
            leaseDurationSeconds=self.lease_duration,
            renewTime=now,
        )
        if holder != self.identity:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        try:
            self.kube.replace_lease(
                self.namespace, self.name, {**lease, "spec": spec}, timeout=timeout
            )
        except Conflict:
            return False
        self._renewed(before)
        return True

    def _create(self, timeout: float) -> bool:
        before = self._clock()
        now = _micro_time(datetime.now(UTC))
        body: JsonObject = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self.lease_duration,
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        }
        try:
            self.kube.create_lease(self.namespace, body, timeout=timeout)
        except AlreadyExists:
            return False
        self._renewed(before)
        return True

    def _renewed(self, before: float) -> None:
        if not self._stopped.is_set():
            self._renewed_at = before

    def _release(self) -> None:
        try:
            lease = self.kube.read_lease(self.namespace, self.name, timeout=self.renew_deadline)
            spec: dict[str, Any] = dict(lease.get("spec") or {})
            if spec.get("holderIdentity") != self.identity:
                return
            spec.pop("holderIdentity", None)
            now = _micro_time(datetime.now(UTC))
            spec.update(leaseDurationSeconds=1, renewTime=now, acquireTime=now)
            self.kube.replace_lease(
                self.namespace, self.name, {**lease, "spec": spec}, timeout=self.renew_deadline
            )
            log.info("leader election: %s released Lease %s/%s", *self._names())
        except Exception as exc:  # the standby takes it after expiry anyway
            log.warning(
                "leader election: release of %s/%s failed: %s", self.namespace, self.name, exc
            )


def leading(memo: Any) -> bool:
    """Whether this replica may act now (the handlers' gate)."""
    leadership: Leadership = getattr(memo, "leadership", None) or AlwaysActing()
    return leadership.acting()


def ensure_acting(leadership: Leadership, what: str) -> None:
    """Just before a write to a target: a replica that lost the Lease meanwhile stops here.
    Each write is logged with the writer's identity: which replica acted, and when."""
    if not leadership.acting():
        raise NotActing(f"{leadership.identity} does not hold the leader Lease; not writing")
    log.info("%s writes: %s", leadership.identity, what)
