"""The bridge's I/O: one Incident per (alert group, namespace, Deployment), or the target's
open Incident, written through `mitigator.k8s` (`mitigator.bridge.upsert`), with the
Kubernetes calls in a bounded thread pool (the client is synchronous; the pool's size is the
bridge's concurrency towards the API server). The groups of one target that arrive together
are written together (`mitigator.bridge.commits`).

How a payload is answered (see `Answer`):

- every alert ends up in exactly one list of the body: ``incidents`` (with the Incident it
  went to), ``unmapped`` (it names no target, or a pod no Deployment owns), ``rejected`` (it
  names a target the bridge refuses: invalid name, protected namespace, namespace not allowed
  or unknown, refused by the API server, too large to store) or ``skipped`` (resolved, and
  its group has no open Incident);
- 200 when at least one Incident was created, updated, attached to or found up to date, or
  when nothing was refused (unmapped and skipped alerts are answers, not errors);
- when alerts were refused and no Incident came of the request (nothing was created): 413
  if an Incident was too large for the API server to store, else 422; Alertmanager does not
  retry either;
- 503 when the API server failed (unreachable, 5xx, forbidden): Alertmanager retries, and
  the retry is harmless because every write is idempotent.

What the sender wrote is clipped (`notes.clip`) in answers and logs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mitigator import k8s
from mitigator.bridge.commits import GroupCommits
from mitigator.bridge.failures import ApiFailure
from mitigator.bridge.grouping import GroupMapping, map_payload, pods_named
from mitigator.bridge.limits import StorageLimits
from mitigator.bridge.notes import AlertNote, Reason, clip
from mitigator.bridge.owners import PodOwners
from mitigator.bridge.payload import WebhookPayload
from mitigator.bridge.targets import MappingRules, PodOwner, PodRef
from mitigator.bridge.telemetry import BridgeMetrics
from mitigator.bridge.upsert import TargetResult, Upserter, utc_now
from mitigator.models.base import JsonObject

log = logging.getLogger("mitigator.bridge")

# Distinct reasons spelled out in a 4xx's message; the body lists every alert anyway.
_MESSAGES = 5


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
        limits: StorageLimits | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.kube = kube
        self.rules = rules
        self.limits = limits or StorageLimits()
        self.metrics = metrics
        self.upserter = Upserter(kube, metrics, clock)
        self.owners = PodOwners(kube)
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="mitigator-bridge")
        self.commits = GroupCommits(self.upserter, self._executor)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def accept(self, payload: WebhookPayload) -> Answer:
        """Turn one webhook payload into Incidents; the answer accounts for every alert."""
        try:
            owners = await self._follow(pods_named(payload, self.rules))
            mapping = map_payload(payload, self.rules, self.limits, owners)
            self._count(payload, mapping)
            results = await _all(self.commits.submit(target) for target in mapping.targets)
        except ApiFailure as failure:
            self.metrics.api_failures.inc()
            message = f"the Kubernetes API failed: {failure}"
            log.error(
                "bridge: %s (group %s); Alertmanager will retry", message, clip(payload.group_key)
            )
            return Answer(503, {"error": "kubernetes_unavailable", "message": message})
        incidents = [result.outcome for result in results if result.outcome is not None]
        rejected = [*mapping.rejected, *(note for result in results for note in result.rejected)]
        skipped = [note for result in results for note in result.skipped]

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
        if payload.truncated_alerts:
            body["truncatedAlerts"] = payload.truncated_alerts
        if rejected and not incidents:
            return _refused(body, rejected)
        return Answer(200, body)

    def _count(self, payload: WebhookPayload, mapping: GroupMapping) -> None:
        self.metrics.alerts_received.inc(mapping.received)
        self.metrics.alerts_truncated.inc(payload.truncated_alerts)
        self.metrics.labels_dropped.inc(
            sum(sum(target.label_drops.values()) for target in mapping.targets)
        )

    async def _follow(self, pods: list[PodRef]) -> dict[tuple[str, str], PodOwner]:
        """Each pod's Deployment (or why none), read in the pool."""
        found = await self._in_pool(self.owners.deployment_of, pods)
        for owner in found:
            result = "deployment" if isinstance(owner, str) else owner.reason.value
            self.metrics.pods_followed.labels(result).inc()
        return {pod.key: owner for pod, owner in zip(pods, found, strict=True)}

    async def _in_pool(self, call: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        """`call` on each item in the pool; an `ApiFailure` of any is raised once all are
        done (a bug is raised as such)."""
        loop = asyncio.get_running_loop()
        return await _all(loop.run_in_executor(self._executor, call, item) for item in items)


async def _all(waits: Iterable[Awaitable[Any]]) -> list[Any]:
    """Every result; an `ApiFailure` of any is raised once all are done (a bug is raised as
    such)."""
    results = await asyncio.gather(*waits, return_exceptions=True)
    failures = [result for result in results if isinstance(result, BaseException)]
    for failure in failures:
        if not isinstance(failure, ApiFailure):
            raise failure
    if failures:
        raise failures[0]
    return list(results)


def _refused(body: JsonObject, rejected: list[AlertNote]) -> Answer:
    """Nothing came of the request: 413 when an Incident was too large to store, else 422."""
    reasons = {note.reason for note in rejected}
    body["status"] = "rejected"
    body["error"] = reasons.pop().value if len(reasons) == 1 else "alerts_rejected"
    messages = list(dict.fromkeys(note.message for note in rejected))
    body["message"] = "; ".join(messages[:_MESSAGES]) + (
        f"; and {len(messages) - _MESSAGES} more" if len(messages) > _MESSAGES else ""
    )
    too_large = any(note.reason is Reason.TOO_LARGE for note in rejected)
    return Answer(413 if too_large else 422, body)


__all__ = ["Answer", "ApiFailure", "BridgeService", "TargetResult"]
