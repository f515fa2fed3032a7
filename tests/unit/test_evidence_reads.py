"""The evidence's reads in the background: the Deployment's Events at once, each pod's Events
and logs the moment the pods are listed (no thread waits for the listing), errors raised where
the evidence is read, and nothing more started once dropped."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest

from mitigator.k8s.errors import ApiError
from mitigator.k8s.evidence_reads import EVENTS_PER_OBJECT, EvidenceReads
from mitigator.models.evidence import PodLog, TargetRead

DEPLOYMENT = {"metadata": {"namespace": "prod", "name": "web"}}
PODS = [
    {"metadata": {"name": "web-1"}, "spec": {"containers": [{"name": "app"}, {"name": "proxy"}]}},
    {"metadata": {"name": "web-2"}, "spec": {"containers": [{"name": "app"}]}},
]


class Recorded:
    """A pool that runs what it is given when told to, recording each read as it starts."""

    def __init__(self) -> None:
        self.submitted: list[tuple[Any, tuple[Any, ...], Future[Any]]] = []
        self.started: list[str] = []

    def submit(self, fn: Any, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self.submitted.append((fn, args, future))
        return future

    def run(self) -> None:
        while self.submitted:
            fn, args, future = self.submitted.pop(0)
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except Exception as exc:
                future.set_exception(exc)

    def events_of(self, namespace: str, *, kind: str, name: str) -> list[dict[str, Any]]:
        self.started.append(f"events {kind}/{name}")
        return [{"reason": f"{kind}/{name} #{i}"} for i in range(EVENTS_PER_OBJECT + 5)]

    def pod_log(self, namespace: str, pod: str, *, container: str, tail_lines: int) -> str:
        self.started.append(f"log {pod}/{container}")
        if container == "proxy":
            raise ApiError("logs of Pod prod/web-1/proxy: 500 Internal Server Error", status=500)
        return f"{pod}/{container} said hello\n"


def _read(listing: Future[list[dict[str, Any]]]) -> TargetRead:
    def background(_: Any) -> Future[list[dict[str, Any]]]:
        return listing

    def never() -> list[dict[str, Any]]:
        raise AssertionError("the pods are listed once, in the background")

    return TargetRead(DEPLOYMENT, list_replica_sets=list, list_pods=never, background=background)


def _reads(pool: Recorded, read: TargetRead) -> EvidenceReads:
    return EvidenceReads(read, submit=pool.submit, events_of=pool.events_of, pod_log=pool.pod_log)


def test_pod_reads_start_when_the_pods_are_listed_and_everything_is_gathered() -> None:
    pool, listing = Recorded(), Future[list[dict[str, Any]]]()
    reads = _reads(pool, _read(listing))
    pool.run()
    assert pool.started == ["events Deployment/web"]  # needs only the Deployment's name
    listing.set_result(PODS)  # the callback starts the pods' reads, in the listing's thread
    pool.run()
    assert sorted(pool.started[1:]) == [
        "events Pod/web-1",
        "events Pod/web-2",
        "log web-1/app",
        "log web-1/proxy",
        "log web-2/app",
    ]
    events, logs = reads.result()
    # The newest of each object's Events, the Deployment's first.
    assert len(events) == 3 * EVENTS_PER_OBJECT
    assert events[0]["reason"] == "Deployment/web #5"
    assert logs[0] == PodLog("web-1", "app", "web-1/app said hello\n")
    # A log that cannot be read is evidence too, saying why.
    assert logs[1].pod == "web-1" and logs[1].text.startswith("[logs unavailable: ")


def test_the_pods_listing_error_is_raised_where_the_evidence_is_read() -> None:
    pool, listing = Recorded(), Future[list[dict[str, Any]]]()
    reads = _reads(pool, _read(listing))
    listing.set_exception(ApiError("Pods of prod/web: 403 Forbidden", status=403))
    pool.run()
    with pytest.raises(ApiError, match="403"):
        reads.result()


def test_dropped_before_the_pods_are_listed_nothing_more_starts() -> None:
    pool, listing = Recorded(), Future[list[dict[str, Any]]]()
    reads = _reads(pool, _read(listing))
    reads.drop()
    listing.set_result(PODS)
    pool.run()
    assert pool.started == []  # the Deployment's read was cancelled before it started


def test_pods_already_listed_are_read_about_at_once() -> None:
    pool = Recorded()
    read = TargetRead(DEPLOYMENT, list_replica_sets=list, list_pods=lambda: PODS[1:])
    assert read.pods == PODS[1:]
    reads = _reads(pool, read)
    pool.run()
    assert pool.started == ["events Deployment/web", "events Pod/web-2", "log web-2/app"]
    events, logs = reads.result()
    assert len(events) == 2 * EVENTS_PER_OBJECT and [log.pod for log in logs] == ["web-2"]
