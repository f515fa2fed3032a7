"""The bridge's I/O: one Incident per (alert group, namespace, Deployment), written through
`mitigator.k8s`, with the Kubernetes calls in a bounded thread pool (the client is
synchronous; the pool's size is the bridge's concurrency towards the API server).

How a payload is answered (see `Answer`):

- every alert ends up in exactly one list of the body: ``incidents`` (with the Incident it
  went to), ``unmapped`` (it names no target), ``rejected`` (it names a target the bridge
  refuses: invalid name, namespace not allowed or unknown, refused by the API server) or
  ``skipped`` (resolved, and its group has no open Incident);
- 200 when at least one Incident was created, updated or found up to date, or when nothing
  was refused (unmapped and skipped alerts are answers, not errors);
- 422 when alerts were refused and no Incident came of the request: nothing was created;
- 503 when the API server failed (unreachable, 5xx, forbidden): Alertmanager retries, and
  the retry is harmless because every write is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from mitigator import k8s
from mitigator.bridge.episodes import Create, Decision, Patch, Skip, decide
from mitigator.bridge.grouping import TargetAlerts, map_payload
from mitigator.bridge.identity import LABEL_GROUP
from mitigator.bridge.notes import AlertNote, Reason
from mitigator.bridge.payload import WebhookPayload
from mitigator.bridge.targets import MappingRules
from mitigator.bridge.telemetry import BridgeMetrics
from mitigator.models.base import JsonObject

log = logging.getLogger("mitigator.bridge")

# Attempts at one target before answering 503: each lost race (a concurrent create, a
# resourceVersion conflict) costs one.
MAX_ATTEMPTS = 8
# Group identities recently written: for those the bridge reads before it writes (a resend),
# for the others it creates first (a new group). Only a hint; both paths are correct.
_RECENT_GROUPS = 10_000
# Distinct reasons spelled out in a 422's message; the body lists every alert anyway.
_MESSAGES = 5

Result = Literal["created", "updated", "unchanged"]
_T = TypeVar("_T")


class ApiFailure(RuntimeError):
    """The Kubernetes API failed in a way a retry may fix: answered 503."""


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


@dataclass(frozen=True)
class Answer:
    status: int
    body: JsonObject = field(default_factory=dict)


class BridgeService:
    def __init__(
        self,
        kube: k8s.KubeClient,
        rules: MappingRules,
        *,
        concurrency: int,
        metrics: BridgeMetrics,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.kube = kube
        self.rules = rules
        self.metrics = metrics
        self.clock = clock
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="mitigator-bridge")
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._recent_lock = threading.Lock()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def accept(self, payload: WebhookPayload) -> Answer:
        """Turn one webhook payload into Incidents; the answer accounts for every alert."""
        mapping = map_payload(payload, self.rules)
        self.metrics.alerts_received.inc(mapping.received)
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(
                loop.run_in_executor(self._executor, self.upsert, target)
                for target in mapping.targets
            ),
            return_exceptions=True,
        )
        failures = [result for result in results if isinstance(result, BaseException)]
        for failure in failures:
            if not isinstance(failure, ApiFailure):
                raise failure
        if failures:
            self.metrics.api_failures.inc()
            message = f"the Kubernetes API failed: {failures[0]}"
            log.error("bridge: %s (group %s); Alertmanager will retry", message, payload.group_key)
            return Answer(503, {"error": "kubernetes_unavailable", "message": message})
        done = [result for result in results if isinstance(result, TargetResult)]
        incidents = [result.outcome for result in done if result.outcome is not None]
        rejected = [*mapping.rejected, *(note for result in done for note in result.rejected)]
        skipped = [note for result in done for note in result.skipped]

        self.metrics.alerts_unmapped.inc(len(mapping.unmapped))
        self.metrics.alerts_skipped.inc(len(skipped))
        for note in rejected:
            self.metrics.alerts_rejected.labels(note.reason.value).inc()
            log.warning(
                "bridge: alert %s (%s) rejected: %s", note.fingerprint, note.alertname, note.message
            )
        body: JsonObject = {
            "status": "accepted",
            "received": mapping.received,
            "incidents": [outcome.to_json() for outcome in incidents],
            "unmapped": [note.to_json() for note in mapping.unmapped],
            "rejected": [note.to_json() for note in rejected],
            "skipped": [note.to_json() for note in skipped],
        }
        if rejected and not incidents:
            reasons = {note.reason.value for note in rejected}
            body["status"] = "rejected"
            body["error"] = reasons.pop() if len(reasons) == 1 else "alerts_rejected"
            messages = list(dict.fromkeys(note.message for note in rejected))
            body["message"] = "; ".join(messages[:_MESSAGES]) + (
                f"; and {len(messages) - _MESSAGES} more" if len(messages) > _MESSAGES else ""
            )
            return Answer(422, body)
        return Answer(200, body)

    # ------------------------------------------------------------ one target (a thread)

    def upsert(self, target: TargetAlerts) -> TargetResult:
        """Create the target's Incident, or merge the alerts into the one that exists.

        A group the bridge has not written lately is probably new: create first (one call),
        and only on AlreadyExists read. A group it has seen is probably a resend: read the
        group's Incidents (by label, every episode at once) and decide."""
        create_first = target.firing and not self._seen(target.group_hash)
        clashes: set[str] = set()  # names a create found taken
        for attempt in range(MAX_ATTEMPTS):
            decision: Decision
            if create_first and attempt == 0:
                decision = Create(1, target.body(1))
            else:
                found = self._api(self._group_incidents, target.namespace, target.group_selector)
                decision = decide(target, found, self.clock())
            try:
                return self._carry_out(target, decision)
            except k8s.NamespaceNotFound:
                message = f"namespace {target.namespace} does not exist"
                return TargetResult(rejected=target.notes(Reason.UNKNOWN_NAMESPACE, message))
            except k8s.Invalid as exc:
                message = f"the API server refused the Incident: {exc}"
                return TargetResult(rejected=target.notes(Reason.REFUSED, message))
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
            f"the Incidents of alert group {target.group_key!r} in {target.namespace} kept "
            f"changing; gave up after {MAX_ATTEMPTS} attempts"
        )

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
        elif isinstance(decision, Patch):
            self._api(self.kube.patch_incident, namespace, decision.name, decision.patch)
            name, result, recorded = decision.name, "updated", decision.recorded
            self.metrics.incidents_updated.inc()
        else:
            name, result, recorded = decision.name, "unchanged", decision.recorded
            self.metrics.incidents_unchanged.inc()
        self._remember(target.group_hash)
        if result != "unchanged":
            log.info("bridge: %s Incident %s/%s", result, namespace, name)
        outcome = IncidentOutcome(namespace, name, target.deployment, result, alerts, recorded)
        return TargetResult(outcome=outcome)

    def _foreign_name(self, target: TargetAlerts, name: str) -> str | None:
        """Why the name is unusable, if an Incident of another origin holds it."""
        try:
            existing = self._api(self.kube.read_incident, target.namespace, name)
        except k8s.NotFound:
            return None  # deleted meanwhile: try again
        labels = existing.get("metadata", {}).get("labels") or {}
        if labels.get(LABEL_GROUP) == target.group_label:
            return None
        return (
            f"an Incident named {name} exists in {target.namespace} and was not created for "
            "this alert group; rename or delete it"
        )

    def _group_incidents(self, namespace: str, selector: str) -> list[JsonObject]:
        return self.kube.list_incidents(namespace, label_selector=selector)

    def _api(self, call: Callable[..., _T], *args: Any) -> _T:
        """One Kubernetes call; failures other than the expected answers are `ApiFailure`."""
        try:
            return call(*args)
        except (k8s.AlreadyExists, k8s.Conflict, k8s.NotFound, k8s.Invalid):
            raise
        except Exception as exc:
            raise ApiFailure(_describe(exc)) from exc

    def _seen(self, digest: str) -> bool:
        with self._recent_lock:
            return digest in self._recent

    def _remember(self, digest: str) -> None:
        with self._recent_lock:
            self._recent[digest] = None
            self._recent.move_to_end(digest)
            while len(self._recent) > _RECENT_GROUPS:
                self._recent.popitem(last=False)


def _describe(exc: Exception) -> str:
    """One line for the 503 and the log: the API server's answer, or why none came."""
    if not isinstance(exc, k8s.ApiError):  # no answer at all: refused, timed out, TLS
        return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    answer = str(exc) if exc.status is None else f"HTTP {exc.status}: {exc}"
    if exc.transient:
        return answer
    # Forbidden, Unauthorized, ...: not the alerts' fault, so still a 503 that Alertmanager
    # retries, but only a change to the bridge's credentials or RBAC will make it pass.
    return f"{answer} (not transient: check the bridge's credentials and RBAC)"
