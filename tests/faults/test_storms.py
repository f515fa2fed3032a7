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

Memory: the resident size is measured idle (after the operator's first periodic trim,
`mitigator.handlers.allocator`), at its peak (sampled through the storm), once the
Incidents settled and once they are deleted, and printed. Without the trim the freed memory
stayed with malloc (about 60 MiB after the storm, until a trim gave it back). With it, what
stays is what the operator builds once up to its pool sizes (MEMORY_SLACK), not idle exactly."""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import yaml
from kubernetes import client

from localkube.processes import free_port, wait_until
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
# How far over idle memory may stay once the freed memory was given back. Measured in 4
# runs (idle 105 MiB, after the operator's first trim; up to 4 storms at once on the
# machine): 126-141 MiB after the deletions and a trim, from a peak of 150-210 MiB. What
# stays is what the storm made the operator build once, up to its pool sizes: the handler
# threads (max_workers, 32) with their stacks and malloc heap (~9 MiB in /proc/<pid>/smaps),
# their pooled API-server connections, and code and validators built on first use (~16 MiB
# of Python objects). A second storm was not measured.
MEMORY_SLACK = 48 * MIB


def _rss_bytes(pid: int) -> int:
    for line in open(f"/proc/{pid}/status").read().splitlines():  # noqa: SIM115
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


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
            try:
                self.value = max(self.value, _rss_bytes(self.pid))
            except OSError:  # the operator is gone: the test fails on that, not here
                return

    def stop(self) -> None:
        self._stop_sampling.set()
        self.join(timeout=5)


def _back_to_idle(pid: int, bound: int, *, idle: int, when: str) -> int:
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
        what=f"the operator's memory {when} back within {bound / MIB:.0f} MiB "
        f"(idle {idle / MIB:.0f} MiB)",
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
    custom = client.CustomObjectsApi(fault_api)
    deploy_good_then_bad(apps, namespace)
    # The default limit of 3 mitigations at a time: the duplicates do not queue for those
    # slots, they attach to the Incident that holds the target's claim.
    rules = [{"name": "any", "actions": [{"rollback": {}}]}]
    resources.create(policy_manifest("web", app="web", rules=rules))
    port, token = free_port(), secrets.token_urlsafe(16)
    fault_operator.env.update(
        {"MITIGATOR_BRIDGE_PORT": str(port), "MITIGATOR_BRIDGE_TOKEN": token, **SHIPPED_TICKS}
    )
    bridge = f"http://127.0.0.1:{port}/api/v1/alerts"
    group_keys = [f'{{}}:{{storm="{index}"}}' for index in range(STORM)]
    fingerprints = [f"{index:016x}" for index in range(STORM)]
    payloads = [
        webhook(alert(namespace, "web", fingerprint=fingerprint), group_key=key)
        for key, fingerprint in zip(group_keys, fingerprints, strict=True)
    ]
    # The value of each group's entry in the bridge-dropped annotation, were its alert left out.
    labels = [group_label(group_hash(key, namespace, "web")) for key in group_keys]

    def health(dep: dict[str, Any]) -> tuple[float, float]:
        return FAILING if image(dep) == BAD else HEALTHY

    with (
        TargetWrites(apps, namespace, "web") as writes,
        Responder(fault_api, signals, namespace=namespace, name="web", health=health),
    ):
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
        ready = time.monotonic()
        wait_until(
            lambda: time.monotonic() - ready > TRIM_SECONDS + 2,
            timeout=TRIM_SECONDS + 10,
            what="the operator's first trim",
        )
        idle = _steady_rss(pid, what="the operator's idle memory to settle")
        bound = idle + MEMORY_SLACK
        peak = Peak(pid)
        peak.start()
        started = time.monotonic()
        manifests = [incident_manifest(f"kubectl-{i}", target="web") for i in range(STORM)]

        def apply(part: list[dict[str, Any]]) -> float:
            documents = yaml.safe_dump_all(part)
            kubectl(
                fault_access, "apply", "--server-side", "-n", namespace, "-f", "-", stdin=documents
            )
            return time.monotonic() - started

        # Both at once, as in an incident: people (and their scripts) and Alertmanager.
        with ThreadPoolExecutor(max_workers=KUBECTLS + SENDERS) as pool:
            applies = [pool.submit(apply, manifests[i::KUBECTLS]) for i in range(KUBECTLS)]
            posts = [pool.submit(_post, bridge, token, body) for body in payloads]
            answers = [post.result() for post in posts]
            posted_in = time.monotonic() - started
            applied_in = max(done.result() for done in applies)
        created_in = time.monotonic() - started
        print(
            f"{STORM} Incidents by kubectl apply in {applied_in:.1f}s, {STORM} alert groups "
            f"through the bridge in {posted_in:.1f}s",
            flush=True,
        )
        assert [code for code, _ in answers] == [200] * STORM, answers
        outcomes = [body["incidents"] for _, body in answers]
        assert all(len(found) == 1 for found in outcomes), outcomes
        results = [found[0]["result"] for found in outcomes]

        def unaccounted() -> list[str]:
            """The alerts neither recorded on an Incident nor counted as left out of one."""
            found = list_incidents(fault_api, namespace)
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
            lambda: len(list_incidents(fault_api, namespace)) >= STORM and not unaccounted(),
            timeout=60,
            what="every Incident to exist and every alert to be recorded or counted",
        )

        def settled() -> bool:
            return all(
                (item.get("status") or {}).get("phase") in ("Resolved", "Suppressed", "Escalated")
                for item in list_incidents(fault_api, namespace)
            )

        wait_until(settled, timeout=180, interval=1, what="every Incident to settle")
        settled_in = time.monotonic() - started
        resolved = _back_to_idle(pid, bound, idle=idle, when="once they settled")
        peak.stop()
        incidents = list_incidents(fault_api, namespace)
        target = apps.read_namespaced_deployment("web", namespace)
        custom.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace, "incidents")
        wait_until(
            lambda: not list_incidents(fault_api, namespace), timeout=120, what="Incidents gone"
        )
        # After a trim that followed the deletions: what the operator keeps, not what malloc
        # has not given back yet.
        gone = time.monotonic()
        wait_until(
            lambda: time.monotonic() - gone > TRIM_SECONDS + 2,
            timeout=TRIM_SECONDS + 10,
            what="a trim after the deletions",
        )
        after = _steady_rss(pid, what="the operator's memory to settle after the deletions")
    phases = [item["status"]["phase"] for item in incidents]
    print(
        f"{len(incidents)} incidents (kubectl apply {applied_in:.1f}s) and {STORM} alert "
        f"groups ({posted_in:.1f}s) sent in {created_in:.1f}s "
        f"({ {r: results.count(r) for r in set(results)} }), "
        f"settled in {settled_in:.1f}s: { {p: phases.count(p) for p in set(phases)} }; "
        f"operator RSS idle {idle / MIB:.0f} MiB, peak {peak.value / MIB:.0f} MiB, settled "
        f"{resolved / MIB:.0f} MiB, after {after / MIB:.0f} MiB (deleted; bound {bound / MIB:.0f})"
    )
    assert len(incidents) >= STORM
    bridge_made = [i for i in incidents if not i["metadata"]["name"].startswith("kubectl-")]
    print(f"the bridge opened {len(bridge_made)} Incident(s) and attached the other alerts")
    assert created_in < 60, "the storm was not sent within a minute"
    applied = [
        item
        for item in incidents
        if any(a.get("state") == "Applied" for a in item["status"].get("actions") or [])
    ]
    assert len(applied) == 1, [item["metadata"]["name"] for item in applied]
    assert applied[0]["status"]["phase"] == "Resolved"
    assert len(writes.templates()) == 2, "one rollback: BAD -> GOOD"
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
    assert after <= bound, f"{after / MIB:.0f} MiB after the storm; idle {idle / MIB:.0f} MiB"
    record = (target.metadata.annotations or {}).get(ACTIONS_ANNOTATION, "")
    assert 0 < len(record) < MAX_RECORD_BYTES, len(record)
    assert fault_operator.tracebacks() == []
