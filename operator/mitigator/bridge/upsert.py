"""One target's alerts into its Incident, through `mitigator.k8s` (one thread per target; the
client is synchronous): read what exists, `episodes.decide`, write, and read again when a
concurrent writer got there first.

What it reads: a group the bridge has not written lately is probably new, so one list of the
namespace's Incidents shows both the group's own and the target's other open ones (to attach
to) at once. A group it wrote lately is probably a resend: a list by the group's label, or
the one Incident it was attached to.

How the API server's answers end: a missing namespace or an invalid Incident is the alerts'
fault (rejected, 422); an Incident the API server will not store because it is too large
(413 "Request entity too large", or a 5xx saying "etcdserver: request is too large" or
"ResourceExhausted ... larger than max") is rejected as `incident_too_large` (413, which
Alertmanager does not retry); any other failure is `ApiFailure` (503, retried).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from mitigator import k8s
from mitigator.bridge.episodes import Create, Decision, Keep, Patch, Skip, decide, open_episode
from mitigator.bridge.grouping import TargetAlerts
from mitigator.bridge.identity import LABEL_GROUP
from mitigator.bridge.notes import AlertNote, Reason, clip
from mitigator.bridge.telemetry import BridgeMetrics
from mitigator.models.base import JsonObject

log = logging.getLogger("mitigator.bridge")

# Attempts at one target before answering 503: each lost race (a concurrent create, a
# resourceVersion conflict) costs one.
MAX_ATTEMPTS = 8
# Groups recently written, and where to (the group's own Incidents, or the name of the one
# it was attached to). Only a hint for what to read first; every path is correct without it.
_RECENT_GROUPS = 10_000
_OWN = ""
# Targets are written one at a time (per bridge process), through this many striped locks.
_TARGET_LOCKS = 64
# How the API server says an object is too large to store (413, or etcd's and gRPC's 5xx).
_TOO_LARGE = ("request entity too large", "request is too large", "larger than max")

Result = Literal["created", "updated", "attached", "unchanged"]
_T = TypeVar("_T")


class ApiFailure(RuntimeError):
    """The Kubernetes API failed in a way a retry may fix: answered 503."""


class TooLarge(RuntimeError):
    """The API server refuses to store an Incident this large."""


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


def _server_message(exc: BaseException) -> str:
    """The message of the metav1.Status the API server answered with, if any."""
    # TODO(k8s): ApiError should carry it; until then it is read from the client's exception
    # that caused the ApiError.
    body = getattr(exc.__cause__, "body", None) or b""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    try:
        status = json.loads(text)
    except ValueError:
        return text
    return str(status.get("message") or text) if isinstance(status, dict) else text


def is_too_large(exc: BaseException) -> bool:
    if not isinstance(exc, k8s.ApiError) or exc.status is None:
        return False
    text = f"{exc} {_server_message(exc)}".lower()
    return exc.status == 413 or (exc.status >= 500 and any(m in text for m in _TOO_LARGE))


def describe_failure(exc: Exception) -> str:
    """One line for the 503 and the log: the API server's answer, or why none came."""
    if not isinstance(exc, k8s.ApiError):  # no answer at all: refused, timed out, TLS
        return f"{type(exc).__name__}: {clip(' '.join(str(exc).split()), 300)}"
    answer = str(exc) if exc.status is None else f"HTTP {exc.status}: {exc}"
    if exc.transient:
        return answer
    # Forbidden, Unauthorized, ...: not the alerts' fault, so still a 503 that Alertmanager
    # retries, but only a change to the bridge's credentials or RBAC will make it pass.
    return f"{answer} (not transient: check the bridge's credentials and RBAC)"


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
        self._recent: OrderedDict[str, str] = OrderedDict()
        self._recent_lock = threading.Lock()
        self._target_locks = [threading.Lock() for _ in range(_TARGET_LOCKS)]

    def upsert(self, target: TargetAlerts) -> TargetResult:
        """Create the target's Incident, or merge the alerts into the one they belong to.

        One target at a time in this bridge: two groups firing together for one Deployment
        (errors and latency after a bad deploy) make one Incident, the second attached to
        the first. Two bridge replicas can still race; the operator's claim on the target
        keeps them from both mitigating."""
        with self._target_locks[hash((target.namespace, target.deployment)) % _TARGET_LOCKS]:
            return self._upsert(target)

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
                pass  # changed or deleted under us: read again
        raise ApiFailure(
            f"the Incidents of alert group {clip(target.group_key)!r} in {target.namespace} "
            f"kept changing; gave up after {MAX_ATTEMPTS} attempts"
        )

    def _decide(self, target: TargetAlerts) -> Decision:
        namespace, now = target.namespace, self.clock()
        hint = self._hint(target.group_hash)
        if hint is None:
            everything = self._api(self.kube.list_incidents, namespace)
            own = [i for i in everything if _group_of(i) == target.group_label]
            return decide(target, own, now, everything)
        own = self._api(self._group_incidents, namespace, target.group_selector)
        if open_episode(own) is not None:
            return decide(target, own, now)
        if hint != _OWN:  # the Incident it was attached to, as a first guess
            try:
                host = self._api(self.kube.read_incident, namespace, hint)
            except k8s.NotFound:
                host = None
            decision = decide(target, own, now, [host] if host else [])
            if not isinstance(decision, Create):
                return decision
        return decide(target, own, now, self._api(self.kube.list_incidents, namespace))

    def _carry_out(self, target: TargetAlerts, decision: Decision) -> TargetResult:
        namespace, alerts = target.namespace, len(target.records)
        if isinstance(decision, Skip):
            return TargetResult(skipped=target.notes(Reason.NO_OPEN_INCIDENT, decision.message))
        result: Result
        if isinstance(decision, Create):
            created = self._api(self.kube.create_incident, namespace, decision.body)
            name, result = decision.name, "created"
            recorded = len(created["spec"]["source"].get("alerts", []))
            self.metrics.incidents_created.inc()
            dropped = target.dropped(target.spec.source.alerts).alerts
        elif isinstance(decision, Patch):
            self._api(self.kube.patch_incident, namespace, decision.name, decision.patch)
            name, recorded = decision.name, decision.recorded
            result = "attached" if decision.attached else "updated"
            counter = self.metrics.incidents_attached if decision.attached else None
            (counter or self.metrics.incidents_updated).inc()
            dropped = decision.dropped
        else:
            assert isinstance(decision, Keep)
            name, result, recorded = decision.name, "unchanged", decision.recorded
            self.metrics.incidents_unchanged.inc()
            dropped = decision.dropped
        self.metrics.alerts_dropped.inc(dropped)
        attached = isinstance(decision, Patch | Keep) and decision.attached
        self._remember(target.group_hash, name if attached else _OWN)
        if result == "attached":
            log.info(
                "bridge: alerts of Deployment %s/%s attached to its open Incident %s",
                namespace,
                target.deployment,
                name,
            )
        elif result != "unchanged":
            log.info("bridge: %s Incident %s/%s", result, namespace, name)
        outcome = IncidentOutcome(namespace, name, target.deployment, result, alerts, recorded)
        return TargetResult(outcome=outcome)

    def _foreign_name(self, target: TargetAlerts, name: str) -> str | None:
        """Why the name is unusable, if an Incident of another origin holds it."""
        try:
            existing = self._api(self.kube.read_incident, target.namespace, name)
        except k8s.NotFound:
            return None  # deleted meanwhile: try again
        if _group_of(existing) == target.group_label:
            return None
        return (
            f"an Incident named {name} exists in {target.namespace} and was not created for "
            "this alert group; rename or delete it"
        )

    def _group_incidents(self, namespace: str, selector: str) -> list[JsonObject]:
        return self.kube.list_incidents(namespace, label_selector=selector)

    def _api(self, call: Callable[..., _T], *args: Any) -> _T:
        """One Kubernetes call; failures other than the expected answers are `ApiFailure`,
        or `TooLarge`."""
        try:
            return call(*args)
        except (k8s.AlreadyExists, k8s.Conflict, k8s.NotFound, k8s.Invalid):
            raise
        except Exception as exc:
            if is_too_large(exc):
                raise TooLarge(clip(_server_message(exc) or str(exc), 300)) from exc
            raise ApiFailure(describe_failure(exc)) from exc

    def _hint(self, digest: str) -> str | None:
        with self._recent_lock:
            return self._recent.get(digest)

    def _remember(self, digest: str, where: str) -> None:
        with self._recent_lock:
            self._recent[digest] = where
            self._recent.move_to_end(digest)
            while len(self._recent) > _RECENT_GROUPS:
                self._recent.popitem(last=False)


def _group_of(incident: JsonObject) -> str | None:
    labels = (incident.get("metadata") or {}).get("labels") or {}
    value = labels.get(LABEL_GROUP)
    return value if isinstance(value, str) else None
