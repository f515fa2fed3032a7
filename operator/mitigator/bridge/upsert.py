"""One target's alerts into its Incident, through `mitigator.k8s` (one thread per target; the
client is synchronous): read what exists, `episodes.decide`, write, and read again when a
concurrent writer got there first.

What it reads (see `Upserter._decide`): a resend of a group attached to another Incident
reads that Incident; a resend of a group with its own Incident lists the group's Incidents by
label; a new group of a target the bridge wrote lately lists the group's (none, usually) and
reads the target's Incident it wrote last, to attach to. Only a new group of a target not
written lately, or when those reads do not settle it, lists the whole namespace, which shows
the group's own Incidents and the target's others at once.

How the API server's answers end: a missing namespace or an invalid Incident is the alerts'
fault (rejected, 422); an Incident the API server will not store because it is too large
(413 "Request entity too large", or a 5xx saying "etcdserver: request is too large" or
"ResourceExhausted ... larger than max") is rejected as `incident_too_large` (413, which
Alertmanager does not retry); any other failure is `ApiFailure` (503, retried).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from mitigator import k8s
from mitigator.bridge.episodes import (
    Create,
    Decision,
    Keep,
    Patch,
    Skip,
    closed,
    decide,
    lists_alerts_of,
    open_episode,
)
from mitigator.bridge.failures import (
    ApiFailure,
    TooLarge,
    describe_failure,
    is_too_large,
    server_message,
)
from mitigator.bridge.grouping import TargetAlerts
from mitigator.bridge.identity import LABEL_GROUP
from mitigator.bridge.memory import Recent
from mitigator.bridge.notes import AlertNote, Reason, clip
from mitigator.bridge.telemetry import BridgeMetrics
from mitigator.bridge.writes import guarded_patch
from mitigator.models.base import JsonObject

log = logging.getLogger("mitigator.bridge")

# Attempts at one target before answering 503: each lost race (a concurrent create, a
# resourceVersion conflict) costs one.
MAX_ATTEMPTS = 8
# Targets are written one at a time (per bridge process), through this many striped locks.
_TARGET_LOCKS = 64

Result = Literal["created", "updated", "attached", "unchanged"]
_T = TypeVar("_T")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class IncidentOutcome:
    namespace: str
    name: str
    target: str
    result: Result
    alerts: int  # alerts of this request that went to this Incident
    recorded: int  # alerts the Incident records now

    def to_json(self) -> JsonObject:
        return asdict(self)


@dataclass(frozen=True)
class TargetResult:
    outcome: IncidentOutcome | None = None
    rejected: tuple[AlertNote, ...] = ()
    skipped: tuple[AlertNote, ...] = ()


Answered = TargetResult | ApiFailure


class Upserter:
    def __init__(
        self,
        kube: k8s.KubeClient,
        metrics: BridgeMetrics,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.kube = kube
        self.metrics = metrics
        self.clock = clock
        self.recent = Recent()
        self._target_locks = [threading.Lock() for _ in range(_TARGET_LOCKS)]

    def upsert(self, target: TargetAlerts) -> TargetResult:
        """Create the target's Incident, or merge the alerts into the one they belong to.

        One target at a time in this bridge: two groups firing together for one Deployment
        (errors and latency after a bad deploy) make one Incident, the second attached to
        the first. Two bridge replicas can still race; the operator's claim on the target
        keeps them from both mitigating."""
        with self.lock_for(target.key):
            return self._upsert(target)

    def lock_for(self, key: tuple[str, str]) -> threading.Lock:
        """The lock a write for the Deployment `key` (namespace, name) holds."""
        return self._target_locks[hash(key) % _TARGET_LOCKS]

    def try_upsert(self, target: TargetAlerts) -> Answered:
        """`upsert` for a caller that holds the target's lock, its failure as a value."""
        try:
            return self._upsert(target)
        except ApiFailure as failure:
            return failure

    def _upsert(self, target: TargetAlerts) -> TargetResult:
        clashes: set[str] = set()  # names a create found taken
        for _ in range(MAX_ATTEMPTS):
            decision = self._decide(target)
            try:
                return self._carry_out(target, decision)
            except k8s.NamespaceNotFound:
                message = f"namespace {target.namespace} does not exist"
                return TargetResult(rejected=target.notes(Reason.UNKNOWN_NAMESPACE, message))
            except k8s.Invalid as exc:
                message = f"the API server refused the Incident: {clip(str(exc), 500)}"
                return TargetResult(rejected=target.notes(Reason.REFUSED, message))
            except TooLarge as exc:
                message = (
                    f"the Incident is too large for the API server to store ({exc}); the "
                    "alerts are not recorded. Lower MITIGATOR_BRIDGE_MAX_ALERTS_PER_INCIDENT, "
                    "MITIGATOR_BRIDGE_MAX_LABELS_PER_ALERT or the label size limits"
                )
                return TargetResult(rejected=target.notes(Reason.TOO_LARGE, message))
            except k8s.AlreadyExists:
                assert isinstance(decision, Create)
                # Usually a race or a resend: the list will find it. Taken twice while the
                # group's own Incidents do not show it: someone else's Incident has the name.
                if decision.name in clashes:
                    taken = self._foreign_name(target, decision.name)
                    if taken is not None:
                        return TargetResult(rejected=target.notes(Reason.REFUSED, taken))
                clashes.add(decision.name)
            except (k8s.Conflict, k8s.NotFound):
                # Changed or deleted under us: read again.
                self.recent.forget_object((target.namespace, target.deployment))
        raise ApiFailure(
            f"the Incidents of alert group {clip(target.group_key)!r} in {target.namespace} "
            f"kept changing; gave up after {MAX_ATTEMPTS} attempts"
        )

    def _decide(self, target: TargetAlerts) -> Decision:
        """Read as little as what the bridge wrote lately allows, then decide; the whole
        namespace is listed only when that is not enough to know."""
        namespace, now = target.namespace, self.clock()
        hint = self.recent.where(target.group_hash)
        if hint:  # attached there last time: probably where its alerts still go
            decision = self._attach_to(target, hint, None, now)
            if decision is not None:
                return decision
        guess = self.recent.last_for((namespace, target.deployment))
        if hint is None and guess is None:  # a new group of a target not written lately
            everything = self.api_call(self.kube.list_incidents, namespace)
            own = [i for i in everything if _group_of(i) == target.group_label]
            return decide(target, own, now, everything)
        own = self.api_call(self.group_incidents, namespace, target.group_selector)
        if open_episode(own) is not None:
            return decide(target, own, now)
        if guess:  # the target's Incident written last: probably open, to attach to
            decision = self._attach_to(target, guess, own, now)
            if decision is not None:
                return decision
        return decide(target, own, now, self.api_call(self.kube.list_incidents, namespace))

    def _attach_to(
        self, target: TargetAlerts, name: str, own: list[JsonObject] | None, now: datetime
    ) -> Decision | None:
        """The decision with the Incident `name` as the host, if that settles it: first from
        the Incident as the bridge wrote it, when that gives a patch (its resourceVersion
        guards it), else from the Incident as read now."""
        remembered = self.recent.written((target.namespace, target.deployment), name)
        if remembered is not None:
            decision = _settled(target, remembered, own, now)
            if isinstance(decision, Patch):
                return decision
        try:
            host = self.api_call(self.kube.read_incident, target.namespace, name)
        except k8s.NotFound:
            return None
        return _settled(target, host, own, now)

    def _carry_out(self, target: TargetAlerts, decision: Decision) -> TargetResult:
        namespace = target.namespace
        if isinstance(decision, Skip):
            return TargetResult(skipped=target.notes(Reason.NO_OPEN_INCIDENT, decision.message))
        if isinstance(decision, Create):
            created = self.api_call(self.kube.create_incident, namespace, decision.body)
            recorded = len(created["spec"]["source"].get("alerts", []))
            self.metrics.incidents_created.inc()
            dropped = target.dropped(target.spec.source.alerts).alerts
            self.metrics.alerts_dropped.inc(dropped)
            self.recent.remember(
                target.group_hash, target.key, created, name=decision.name, own=True
            )
            log.info("bridge: created Incident %s/%s", namespace, decision.name)
            return _outcome(target, name=decision.name, result="created", recorded=recorded)
        written = None
        if isinstance(decision, Patch):
            written = self.patch(namespace, decision.name, decision.patch, base=decision.base)
        return self.record(target, decision, written=written, recorded=decision.recorded)

    def record(
        self,
        target: TargetAlerts,
        decision: Patch | Keep,
        *,
        written: JsonObject | None,
        recorded: int,
    ) -> TargetResult:
        """The answer to `target` once `decision` holds (`written`: the Incident as the patch
        that carried it left it), counted, remembered and logged."""
        result: Result
        if isinstance(decision, Patch):
            result = "attached" if decision.attached else "updated"
            counter = self.metrics.incidents_attached if decision.attached else None
            (counter or self.metrics.incidents_updated).inc()
        else:
            result = "unchanged"
            self.metrics.incidents_unchanged.inc()
        self.metrics.alerts_dropped.inc(decision.dropped)
        own = not decision.attached
        self.recent.remember(target.group_hash, target.key, written, name=decision.name, own=own)
        if result == "attached":
            log.info(
                "bridge: alerts of Deployment %s/%s attached to its open Incident %s",
                target.namespace,
                target.deployment,
                decision.name,
            )
        elif result == "updated":
            log.info("bridge: updated Incident %s/%s", target.namespace, decision.name)
        return _outcome(target, name=decision.name, result=result, recorded=recorded)

    def patch(
        self, namespace: str, name: str, merge: JsonObject, *, base: Mapping[str, Any] | None
    ) -> JsonObject:
        """The decided change, guarded by what it was decided on (`writes.guarded_patch`), or
        by the resourceVersion when that cannot be tested."""
        tested = guarded_patch(dict(base), merge) if base is not None else None
        if tested is None:
            return self.api_call(self.kube.patch_incident, namespace, name, merge)
        return self.api_call(self.kube.patch_incident_tested, namespace, name, tested)

    def _foreign_name(self, target: TargetAlerts, name: str) -> str | None:
        """Why the name is unusable, if an Incident of another origin holds it."""
        try:
            existing = self.api_call(self.kube.read_incident, target.namespace, name)
        except k8s.NotFound:
            return None  # deleted meanwhile: try again
        if _group_of(existing) == target.group_label:
            return None
        return (
            f"an Incident named {name} exists in {target.namespace} and was not created for "
            "this alert group; rename or delete it"
        )

    def group_incidents(self, namespace: str, selector: str) -> list[JsonObject]:
        return self.kube.list_incidents(namespace, label_selector=selector)

    def api_call(self, call: Callable[..., _T], *args: Any) -> _T:
        """One Kubernetes call; failures other than the expected answers are `ApiFailure`,
        or `TooLarge`."""
        try:
            return call(*args)
        except (k8s.AlreadyExists, k8s.Conflict, k8s.NotFound, k8s.Invalid):
            raise
        except Exception as exc:
            if is_too_large(exc):
                raise TooLarge(clip(server_message(exc) or str(exc), 300)) from exc
            raise ApiFailure(describe_failure(exc)) from exc


def _settled(
    target: TargetAlerts, host: JsonObject, own: list[JsonObject] | None, now: datetime
) -> Decision | None:
    """What to do given `host` and the group's own Incidents (None: not read, so only a host
    that holds the group's alerts settles it); None when the namespace must be listed."""
    if own is None:
        if not lists_alerts_of(host, target) or closed(host):
            return None
        return decide(target, [], now, [host])
    decision = decide(target, own, now, [host])
    return None if isinstance(decision, Create | Skip) else decision


def _outcome(target: TargetAlerts, *, name: str, result: Result, recorded: int) -> TargetResult:
    alerts = len(target.records)
    where = (target.namespace, name, target.deployment)
    return TargetResult(outcome=IncidentOutcome(*where, result, alerts, recorded))


def _group_of(incident: JsonObject) -> str | None:
    labels = (incident.get("metadata") or {}).get("labels") or {}
    value = labels.get(LABEL_GROUP)
    return value if isinstance(value, str) else None
