"""The evidence's reads, in the background: the Events of the Deployment (started at once: they
need only its name), then the Events of each pod and each container's log, started the moment
the pods are listed (by a callback of that listing, so no thread waits on another's work and
a full pool only queues them). A first tick starts them before it has classified, beside its
Prometheus queries; the executor waits for them just before the write that replaces the pods
(actions/evidence.py saves them)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from mitigator.k8s.errors import ApiError, NotFound
from mitigator.models import JsonObject
from mitigator.models.evidence import PodLog, TargetRead

LOG_LINES = 100  # per container
EVENTS_PER_OBJECT = 20

Submit = Callable[..., "Future[Any]"]
EventsOf = Callable[..., list[JsonObject]]
PodLogOf = Callable[..., str]


class EvidenceReads:
    """One capture's reads in flight (models.evidence.EvidenceReading)."""

    def __init__(
        self,
        read: TargetRead,
        *,
        submit: Submit,
        events_of: EventsOf,
        pod_log: PodLogOf,
    ) -> None:
        self._submit, self._events_of, self._pod_log = submit, events_of, pod_log
        metadata = read.deployment["metadata"]
        self._namespace = str(metadata["namespace"])
        self._lock = threading.Lock()
        self._dropped = False
        self._pods_known = threading.Event()
        self._error: BaseException | None = None
        self._events: list[Future[list[JsonObject]]] = []
        self._logs: list[Future[PodLog]] = []
        self._start_events("Deployment", str(metadata["name"]))
        # Runs here and now if the pods are already listed, else in the thread that lists them.
        read.pods_listing().add_done_callback(self._on_pods)

    def _start_events(self, kind: str, name: str) -> None:
        self._events.append(self._submit(self._read_events, kind, name))

    def _read_events(self, kind: str, name: str) -> list[JsonObject]:
        return self._events_of(self._namespace, kind=kind, name=name)[-EVENTS_PER_OBJECT:]

    def _read_log(self, pod: str, container: str) -> PodLog:
        try:
            text = self._pod_log(self._namespace, pod, container=container, tail_lines=LOG_LINES)
        except (ApiError, NotFound) as exc:
            # A pod without logs (not started, node gone) is evidence too: say so.
            text = f"[logs unavailable: {exc}]\n"
        return PodLog(pod, container, text)

    def _on_pods(self, listing: Future[list[JsonObject]]) -> None:
        try:
            with self._lock:
                if self._dropped:
                    return
                pods = listing.result()
                for pod in pods:
                    name = str(pod["metadata"]["name"])
                    self._start_events("Pod", name)
                    for container in (pod.get("spec") or {}).get("containers") or []:
                        self._logs.append(self._submit(self._read_log, name, container["name"]))
        except BaseException as exc:  # the listing's error, raised where the evidence is read
            self._error = exc
        finally:
            self._pods_known.set()

    def result(self) -> tuple[list[JsonObject], list[PodLog]]:
        """The Events and logs, once every read is in; the pods' listing's error, or the
        first read's, if one failed."""
        self._pods_known.wait()
        if self._error is not None:
            raise self._error
        events = [event for listed in self._events for event in listed.result()]
        return events, [log.result() for log in self._logs]

    def drop(self) -> None:
        """Not needed after all (no step replaces the pods, or it was refused): what has not
        started is not started; what is in flight finishes and is forgotten."""
        with self._lock:
            self._dropped = True
            for events in self._events:
                events.cancel()
            for log in self._logs:
                log.cancel()
