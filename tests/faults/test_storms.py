"""A storm for one target (issue 13, point 7): STORM Incidents by kubectl and STORM alert
groups through the bridge, all sent within a minute. One mitigation is made; every other
Incident is recorded as attached to it (Suppressed) or refused by the cooldown that mitigation
started, and every alert of the bridge is recorded on an Incident (the bridge attaches a group
to the target's open Incident rather than open another) or, beyond the 100 alerts an Incident
records, counted there as left out; every Incident and the target's action record stay within
their bounds; the operator's memory comes back near its idle level once they settled, and
once they are deleted.

The bridge answers through group commits (`mitigator.bridge.commits`): the groups that arrive
for one target while it is being written go into its next write together, so the storm costs
7 to 13 writes of the target's Incident, not 200.

Two storms, on two targets one after the other ("warm", then "web"), so that memory can be
judged: the resident size is measured idle (after the operator's first periodic trim,
`mitigator.handlers.allocator`), at each storm's peak, once its Incidents settled and once
they are deleted (after a trim). Without the trim the freed memory stayed with malloc (about
60 MiB after a storm). After each storm the resident size must be back within what the
operator builds once, up to its pool sizes (POOLS_SLACK), of idle. A leak is judged apart,
on what is still allocated (`mitigator.observability.heap`, from the operator's /metrics):
the resident size after a trim moves by over 20 MiB from storm to storm with fragmentation,
the allocated blocks and bytes do not."""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from kubernetes import client

from localkube.processes import free_port, rss_bytes, wait_until
from localkube.testing import ClusterAccess
from mitigator import ACTIONS_ANNOTATION
from mitigator.bridge.identity import group_hash, group_label
from mitigator.bridge.limits import ANNOTATION_DROPPED, read_dropped
from mitigator.handlers.allocator import TRIM_EVERY_SECONDS as TRIM_SECONDS
from mitigator.models import MAX_TIMELINE_ENTRIES
from tests.support.bridge import alert, list_incidents, webhook
from tests.support.faults import OperatorProcess, TargetWrites
from tests.support.kube import BAD, deploy_good_then_bad
from tests.support.objects import GROUP, VERSION, Resources, incident_manifest, policy_manifest
from tests.support.responder import Responder, image
from tests.support.world import kubectl

pytestmark = pytest.mark.cluster

HEALTHY, FAILING = (0.0, 0.2), (0.3, 0.2)
STORM = 200
# Alertmanager notifies every group from its own goroutine: a storm arrives all at once.
SENDERS = STORM
# kubectl apply sends one object at a time: the Incidents come from several at once.
KUBECTLS = 4
# The escalation timer at its shipped interval, not the tier's 0.5 s: it runs for every
# Incident not settled yet, and 200 of them at 0.5 s are 400 handler runs a second that this
# test (which has no escalation levels) does not need.
SHIPPED_TICKS = {"MITIGATOR_ESCALATION_TICK_SECONDS": "5"}
MAX_STATUS_BYTES = 64 * 1024
MAX_OBJECT_BYTES = 256 * 1024
MAX_RECORD_BYTES = 32 * 1024
MIB = 1024 * 1024
# How far over idle a storm may leave the operator, once freed memory was given back: what it
# builds once, up to its pool sizes (the handler threads, max_workers 32, with their stacks
# and malloc heap, their pooled API-server connections, code and validators built on first
# use). Measured over a 105 MiB idle: 18-39 MiB after the first storm in 8 runs at load 1-25,
# 27-40 MiB after the second in 6.
POOLS_SLACK = 64 * MIB
# What a second storm, as large, may leave allocated over the first (a leak, once the
# first built the pools): second minus first measured +30,469, -11,758 and -119 Python
# blocks, +1.0, +0.9 and +0.3 MiB of malloc in use in 3 runs (the resident size, for
# comparison: +5, +22 and +2 MiB).
# 120,000 blocks is 300 per Incident of the storm (400), fewer than one Incident's body as
# parsed from JSON holds; 8 MiB is 20 KiB per Incident. Smaller leaks are not caught here
# (docs/RELIABILITY.md says so).
LEAK_BLOCKS = 120_000
LEAK_MALLOC = 8 * MIB
TARGETS = ("warm", "web")


def _rss_bytes(pid: int) -> int:
    rss = rss_bytes(pid)
    assert rss is not None, "no VmRSS: the operator is gone"
    return rss


def _steady_rss(pid: int, *, what: str) -> int:
    """The resident size once it stopped moving: three samples a second apart within 1 MiB."""
    samples: list[int] = []

    def steady() -> bool:
        samples.append(_rss_bytes(pid))
        last = samples[-3:]
        return len(last) == 3 and max(last) - min(last) <= MIB

    wait_until(steady, timeout=90, interval=1, what=what)
    return samples[-1]


class Peak(threading.Thread):
    """The largest resident size seen, sampled every half second until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.value = _rss_bytes(pid)
        self._stop_sampling = threading.Event()

    def run(self) -> None:
        while not self._stop_sampling.wait(0.5):
            rss = rss_bytes(self.pid)
            if rss is None:  # the operator is gone: the test fails on that, not here
                return
            self.value = max(self.value, rss)

    def stop(self) -> None:
        self._stop_sampling.set()
        self.join(timeout=5)


def _back_to_idle(pid: int, bound: int, *, when: str) -> int:
    """The resident size once it is within `bound` again (the operator gives freed memory
    back every TRIM_SECONDS: three of them at most)."""
    seen = _rss_bytes(pid)

    def within() -> bool:
        nonlocal seen
        seen = _rss_bytes(pid)
        return seen <= bound

    wait_until(
        within,
        timeout=3 * TRIM_SECONDS,
        interval=1,
        what=f"the operator's memory {when} back within {bound / MIB:.0f} MiB",
    )
    return seen


def _post(url: str, token: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=60) as resp:
        return int(resp.status), json.loads(resp.read())


@dataclass
class Storm:
    """One storm's figures, and the Incidents as they settled."""

    target: str
    applied_in: float = 0.0
    posted_in: float = 0.0
    created_in: float = 0.0
    settled_in: float = 0.0
    results: list[str] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)
    templates: int = 0
    record: str = ""
    peak: int = 0
    settled: int = 0
    after: int = 0
    heap: Heap | None = None  # what is still allocated once the Incidents are deleted

    def line(self) -> str:
        phases = [item["status"]["phase"] for item in self.incidents]
        return (
            f"storm on {self.target}: {len(self.incidents)} incidents (kubectl apply "
            f"{self.applied_in:.1f}s) and {STORM} alert groups ({self.posted_in:.1f}s) sent in "
            f"{self.created_in:.1f}s ({ {r: self.results.count(r) for r in set(self.results)} }),"
            f" settled in {self.settled_in:.1f}s: { {p: phases.count(p) for p in set(phases)} };"
            f" operator RSS peak {self.peak / MIB:.0f} MiB, settled {self.settled / MIB:.0f} MiB,"
            f" after {self.after / MIB:.0f} MiB (deleted); {self.heap}"
        )


@dataclass(frozen=True)
class Heap:
    """The operator's heap gauges (`mitigator.observability.heap`), from its /metrics."""

    blocks: int
    malloc: int

    @classmethod
    def read(cls, metrics_url: str) -> Heap:
        with urllib.request.urlopen(metrics_url, timeout=10) as response:
            text = response.read().decode()
        values = {
            name: int(float(value))
            for name, _, value in (line.partition(" ") for line in text.splitlines())
            if name in ("mitigator_python_allocated_blocks", "mitigator_malloc_in_use_bytes")
        }
        return cls(
            values["mitigator_python_allocated_blocks"], values["mitigator_malloc_in_use_bytes"]
        )

    def __str__(self) -> str:
        return f"heap {self.blocks} Python blocks, malloc {self.malloc / MIB:.1f} MiB in use"


@dataclass(frozen=True)
class Stage:
    access: ClusterAccess
    api: client.ApiClient
    apps: client.AppsV1Api
    namespace: str
    bridge: str
    token: str
    pid: int
    metrics: str


def _wait_for_a_trim() -> None:
    """Until the operator's periodic trim has run since now: what it keeps, not what malloc
    has not given back yet."""
    since = time.monotonic()
    wait_until(
        lambda: time.monotonic() - since > TRIM_SECONDS + 2,
        timeout=TRIM_SECONDS + 10,
        what="the operator's next trim",
    )


def _storm(stage: Stage, target: str, *, bound: int) -> Storm:
    """STORM Incidents by kubectl and STORM alert groups through the bridge for `target`, all
    at once; waits until every one settled, then deletes them and waits for a trim."""
    namespace, api = stage.namespace, stage.api
    storm = Storm(target)
    group_keys = [f'{{}}:{{storm="{target}-{index}"}}' for index in range(STORM)]
    fingerprints = [f"{target}-{index:08x}" for index in range(STORM)]
    payloads = [
        webhook(alert(namespace, target, fingerprint=fingerprint), group_key=key)
        for key, fingerprint in zip(group_keys, fingerprints, strict=True)
    ]
    # The value of each group's entry in the bridge-dropped annotation, were its alert left out.
    labels = [group_label(group_hash(key, namespace, target)) for key in group_keys]
    manifests = [incident_manifest(f"kubectl-{target}-{i}", target=target) for i in range(STORM)]
    peak = Peak(stage.pid)
    peak.start()
    started = time.monotonic()

    def apply(part: list[dict[str, Any]]) -> float:
        documents = yaml.safe_dump_all(part)
        kubectl(stage.access, "apply", "--server-side", "-n", namespace, "-f", "-", stdin=documents)
        return time.monotonic() - started

    # Both at once, as in an incident: people (and their scripts) and Alertmanager.
    with ThreadPoolExecutor(max_workers=KUBECTLS + SENDERS) as pool:
        applies = [pool.submit(apply, manifests[i::KUBECTLS]) for i in range(KUBECTLS)]
        posts = [pool.submit(_post, stage.bridge, stage.token, body) for body in payloads]
        answers = [post.result() for post in posts]
        storm.posted_in = time.monotonic() - started
        storm.applied_in = max(done.result() for done in applies)
    storm.created_in = time.monotonic() - started
    print(
        f"{STORM} Incidents for {target} by kubectl apply in {storm.applied_in:.1f}s, {STORM} "
        f"alert groups through the bridge in {storm.posted_in:.1f}s",
        flush=True,
    )
    assert [code for code, _ in answers] == [200] * STORM, answers
    outcomes = [body["incidents"] for _, body in answers]
    assert all(len(found) == 1 for found in outcomes), outcomes
    storm.results = [found[0]["result"] for found in outcomes]

    def mine() -> list[dict[str, Any]]:
        return [i for i in list_incidents(api, namespace) if i["spec"]["target"]["name"] == target]

    def unaccounted() -> list[str]:
        """The alerts neither recorded on an Incident nor counted as left out of one."""
        found = mine()
        recorded = {
            a["fingerprint"]
            for item in found
            for a in item["spec"].get("source", {}).get("alerts") or []
        }
        dropped = {
            group
            for item in found
            for group, entry in read_dropped(item["metadata"].get("annotations")).items()
            if entry.alerts
        }
        return [
            fingerprint
            for fingerprint, label in zip(fingerprints, labels, strict=True)
            if fingerprint not in recorded and label not in dropped
        ]

    wait_until(
        lambda: len(mine()) >= STORM and not unaccounted(),
        timeout=60,
        what="every Incident to exist and every alert to be recorded or counted",
    )

    def settled() -> bool:
        return all(
            (item.get("status") or {}).get("phase") in ("Resolved", "Suppressed", "Escalated")
            for item in mine()
        )

    wait_until(settled, timeout=180, interval=1, what="every Incident to settle")
    storm.settled_in = time.monotonic() - started
    storm.settled = _back_to_idle(stage.pid, bound, when="once they settled")
    peak.stop()
    storm.peak = peak.value
    storm.incidents = mine()
    deployment = stage.apps.read_namespaced_deployment(target, namespace)
    storm.record = (deployment.metadata.annotations or {}).get(ACTIONS_ANNOTATION, "")
    for item in storm.incidents:
        client.CustomObjectsApi(api).delete_namespaced_custom_object(
            GROUP, VERSION, namespace, "incidents", item["metadata"]["name"]
        )
    wait_until(lambda: not mine(), timeout=120, what="Incidents gone")
    _wait_for_a_trim()
    storm.after = _steady_rss(stage.pid, what="the operator's memory to settle after the deletions")
    storm.heap = Heap.read(stage.metrics)
    print(storm.line(), flush=True)
    return storm


def _check(storm: Storm) -> None:
    """One mitigation, everything else attached or refused, everything within its bounds."""
    incidents = storm.incidents
    assert len(incidents) >= STORM
    bridge_made = [i for i in incidents if not i["metadata"]["name"].startswith("kubectl-")]
    assert len(bridge_made) == 1, "the bridge opens one Incident and attaches the other groups"
    assert storm.created_in < 60, "the storm was not sent within a minute"
    applied = [
        item
        for item in incidents
        if any(a.get("state") == "Applied" for a in item["status"].get("actions") or [])
    ]
    assert len(applied) == 1, [item["metadata"]["name"] for item in applied]
    assert applied[0]["status"]["phase"] == "Resolved"
    assert storm.templates == 2, "one rollback: BAD -> GOOD"
    for item in incidents:
        status = item["status"]
        assert len(json.dumps(status)) < MAX_STATUS_BYTES
        assert len(json.dumps(item)) < MAX_OBJECT_BYTES
        assert len(status.get("timeline") or []) <= MAX_TIMELINE_ENTRIES
        assert len(item["metadata"].get("annotations", {}).get(ANNOTATION_DROPPED, "")) < (
            MAX_STATUS_BYTES
        )
        if item is applied[0]:
            continue
        attached = status["phase"] == "Suppressed" and status.get("attachedTo")
        cooled = status["phase"] == "Escalated" and "cooldown" in status.get("message", "")
        # Reached its step while the rollback was rolling out and read no older revision:
        # nothing written, escalated with that reason (docs/RELIABILITY.md, row 7).
        skipped = status["phase"] == "Escalated" and "skipped" in status.get("message", "")
        assert attached or cooled or skipped, (item["metadata"]["name"], status.get("message"))
    assert 0 < len(storm.record) < MAX_RECORD_BYTES, len(storm.record)


def test_a_storm_for_one_target_makes_one_mitigation_within_bounds(
    *,
    fault_access: ClusterAccess,
    fault_api: client.ApiClient,
    fault_apps: client.AppsV1Api,
    fault_namespace: str,
    fault_operator: OperatorProcess,
    signals: Any,
) -> None:
    namespace, apps = fault_namespace, fault_apps
    resources = Resources(fault_api, namespace)
    # The default limit of 3 mitigations at a time: the duplicates do not queue for those
    # slots, they attach to the Incident that holds the target's claim.
    rules = [{"name": "any", "actions": [{"rollback": {}}]}]
    for target in TARGETS:
        deploy_good_then_bad(apps, namespace, target)
        resources.create(policy_manifest(target, app=target, rules=rules))
    port, metrics_port, token = free_port(), free_port(), secrets.token_urlsafe(16)
    fault_operator.env.update(
        {
            "MITIGATOR_BRIDGE_PORT": str(port),
            "MITIGATOR_BRIDGE_TOKEN": token,
            "MITIGATOR_METRICS_PORT": str(metrics_port),
            **SHIPPED_TICKS,
        }
    )

    def health(dep: dict[str, Any]) -> tuple[float, float]:
        return FAILING if image(dep) == BAD else HEALTHY

    with contextlib.ExitStack() as stack:
        writes = {
            target: stack.enter_context(TargetWrites(apps, namespace, target)) for target in TARGETS
        }
        for target in TARGETS:
            stack.enter_context(
                Responder(fault_api, signals, namespace=namespace, name=target, health=health)
            )
        fault_operator.start()
        assert fault_operator.process is not None
        pid = fault_operator.process.pid
        wait_until(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2),
            timeout=120,  # a cold start of the interpreter on a loaded machine
            what="the operator's bridge",
        )
        # Idle as it runs: after its first return of freed memory to the system (its timer
        # starts before the bridge listens).
        _wait_for_a_trim()
        idle = _steady_rss(pid, what="the operator's idle memory to settle")
        idle_heap = Heap.read(f"http://127.0.0.1:{metrics_port}/metrics")
        stage = Stage(
            fault_access,
            fault_api,
            apps,
            namespace,
            f"http://127.0.0.1:{port}/api/v1/alerts",
            token,
            pid,
            f"http://127.0.0.1:{metrics_port}/metrics",
        )
        first = _storm(stage, TARGETS[0], bound=idle + POOLS_SLACK)
        second = _storm(stage, TARGETS[1], bound=idle + POOLS_SLACK)
        for storm in (first, second):
            storm.templates = len(writes[storm.target].templates())
    print(
        f"operator RSS idle {idle / MIB:.0f} MiB; after the first storm {first.after / MIB:.0f} "
        f"MiB, after the second {second.after / MIB:.0f} MiB; idle {idle_heap}"
    )
    _check(first)
    _check(second)
    # The first storm grows the operator's pools once (threads, connections, code built on
    # first use); after that a storm leaves nothing allocated behind: a second one, as large,
    # ends with what the first left allocated, within the noise.
    assert first.after <= idle + POOLS_SLACK, (idle, first.after)
    assert second.after <= idle + POOLS_SLACK, (idle, second.after)
    assert first.heap is not None and second.heap is not None
    assert second.heap.blocks <= first.heap.blocks + LEAK_BLOCKS, (first.heap, second.heap)
    assert second.heap.malloc <= first.heap.malloc + LEAK_MALLOC, (first.heap, second.heap)
    assert fault_operator.tracebacks() == []
