"""Two real operator processes against one API server, with Incidents in flight: leader
election on a coordination.k8s.io/v1 Lease decides which one acts.

Both run as the operator's ServiceAccount (config/overlays/cluster-wide's RBAC, a token from
the API server), on short Lease timings (tests.support.world.TEST_LEASE: 4 s duration, 3 s
renew deadline, 0.5 s retry). What is counted is what the API server holds: each target's
generation (one spec write per restart) and its action records; who wrote is read from each
process's log ("<identity> writes: ..." is logged just before every write to a target)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.monitoring import Prometheus
from localkube.processes import wait_until
from mitigator import ACTIONS_ANNOTATION
from tests.support.kube import deployment_manifest, replica_sets_by_revision, wait_rollout
from tests.support.objects import Resources, incident_manifest, policy_manifest
from tests.support.world import INSTALL_NAMESPACE, TEST_LEASE, start_operator

pytestmark = pytest.mark.cluster

LEASE_DURATION = float(TEST_LEASE["MITIGATOR_LEASE_DURATION_SECONDS"])
RENEW_DEADLINE = float(TEST_LEASE["MITIGATOR_RENEW_DEADLINE_SECONDS"])
DONE = ("Resolved", "Escalated", "Failed", "Suppressed")


class Replica:
    """One `mitigator run` process with a fixed identity, and what its log says it wrote."""

    def __init__(self, identity: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.identity = identity
        self.process = process
        self.log = log

    def text(self, since: int = 0) -> str:
        return self.log.read_bytes()[since:].decode(errors="replace")

    def size(self) -> int:
        return self.log.stat().st_size

    def writes(self, since: int = 0) -> list[tuple[datetime, str]]:
        """(time, what) of every write it made to a target, from its log."""
        marker = f"{self.identity} writes: "
        found = []
        for line in self.text(since).splitlines():
            if marker not in line:
                continue
            record = json.loads(line)  # the operator logs JSON lines (observability.logs)
            event = str(record["event"])
            stamp = datetime.fromisoformat(record["timestamp"])  # UTC, aware
            found.append((stamp, event.split(marker, 1)[1]))
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
        self.process.wait(timeout=30)


class Pair:
    """The test's world: a namespace, its targets and policy, and the two replicas."""

    def __init__(
        self, api_client: client.ApiClient, namespace: str, signals: Any, start: Any
    ) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.signals = signals
        self.resources = Resources(api_client, namespace)
        self.apps = client.AppsV1Api(api_client)
        self.lease_name = f"mitigator-leader-{namespace}"
        self.start = start
        self.replicas: list[Replica] = []

    def replica(self, identity: str) -> Replica:
        started: Replica = self.start(identity)
        self.replicas.append(started)
        return started

    def lease(self) -> client.V1Lease:
        return client.CoordinationV1Api(self.api_client).read_namespaced_lease(
            self.lease_name, INSTALL_NAMESPACE
        )

    def holder(self) -> str | None:
        try:
            return self.lease().spec.holder_identity  # type: ignore[no-any-return]
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def wait_holder(self, identity: str, *, timeout: float = 60) -> float:
        """Until `identity` holds the Lease; the monotonic time it was first seen holding."""
        wait_until(lambda: self.holder() == identity, timeout=timeout, what=f"{identity} leads")
        return time.monotonic()

    def targets(self, names: list[str]) -> None:
        """Healthy Deployments (the policy acts on any severity), their signals scraped."""
        for name in names:
            manifest = deployment_manifest(name, replicas=1, labels={"tier": "ha"})
            self.apps.create_namespaced_deployment(self.namespace, manifest)
            self.signals.set(self.namespace, name, error_ratio=0.0, p95_seconds=0.2)
        for name in names:
            wait_rollout(self.apps, self.namespace, name)
            self.signals.wait_scraped(self.namespace, name)

    def policy(self, *, window: str) -> None:
        manifest = policy_manifest(
            "ha",
            app="unused",
            rules=[{"name": "restart", "actions": [{"restart": {}}]}],
            guardrails={"maxConcurrentMitigations": 100},
            window=window,
            timeout="3m",
        )
        manifest["spec"]["selector"] = {"matchLabels": {"tier": "ha"}}
        self.resources.create(manifest)

    def incidents(self, names: list[str]) -> None:
        for name in names:
            self.resources.create(incident_manifest(name, target=name))

    def wait_resolved(self, names: list[str]) -> None:
        for name in names:
            status = self.resources.wait_phase(name, *DONE, timeout=180)["status"]
            assert status["phase"] == "Resolved", (name, status.get("message"))

    def assert_applied_once(self, name: str) -> None:
        """One restart reached the API server: one action record, one new pod template (a
        second restart would stamp another restartedAt: revision 3, a third ReplicaSet)."""
        deployment = self.apps.read_namespaced_deployment(name, self.namespace)
        records = json.loads((deployment.metadata.annotations or {})[ACTIONS_ANNOTATION])
        assert [r["type"] for r in records] == ["restart"], (name, records)

        def revision() -> str:
            dep = self.apps.read_namespaced_deployment(name, self.namespace)
            return str(dep.metadata.annotations["deployment.kubernetes.io/revision"])

        wait_until(lambda: revision() == "2", timeout=30, what=f"revision 2 of {name}")
        assert len(replica_sets_by_revision(self.apps, self.namespace, name)) == 2, name


@pytest.fixture
def pair(
    *,
    api_client: client.ApiClient,
    own_namespace: str,
    signals: Any,
    prometheus: Prometheus,
    operator_kubeconfig: Path,
    tmp_path: Path,
) -> Iterator[Pair]:
    def start(identity: str) -> Replica:
        log = tmp_path / f"{identity}.log"
        process = start_operator(
            operator_kubeconfig,
            prometheus,
            own_namespace,
            log,
            MITIGATOR_LEADER_IDENTITY=identity,
        )
        return Replica(identity, process, log)

    world = Pair(api_client, own_namespace, signals, start)
    try:
        yield world
    finally:
        for replica in world.replicas:
            replica.stop()
        for replica in world.replicas:
            assert "forbidden" not in replica.text().lower(), replica.text()[-3000:]
        client.CoordinationV1Api(api_client).delete_namespaced_lease(
            world.lease_name, INSTALL_NAMESPACE
        )


def test_two_replicas_apply_each_action_once_and_the_standby_finishes_after_a_sigkill(
    pair: Pair,
) -> None:
    first = [f"web-{n}" for n in range(4)]
    second = [f"api-{n}" for n in range(2)]
    pair.targets(first + second)
    # A long verification window: the leader is killed while its incidents verify.
    pair.policy(window="8s")
    a = pair.replica("op-a")
    pair.wait_holder("op-a")
    b = pair.replica("op-b")
    wait_until(lambda: "leader election: Lease" in b.text(), timeout=60, what="op-b to start")

    pair.incidents(first)
    for name in first:
        phase = pair.resources.wait_phase(name, "Verifying", *DONE, timeout=120)["status"]
        assert phase["phase"] == "Verifying", (name, phase.get("message"))
    killed = datetime.now(UTC)  # before the kill: no renewal of op-a's is later than this
    a.process.kill()  # SIGKILL: no release of the Lease, no goodbye
    assert a.process.wait(timeout=30) == -signal.SIGKILL
    # What op-a wrote last (or a renewal before it, were its last one still on the way).
    last_renewal = pair.lease().spec.renew_time
    pair.incidents(second)  # new work arrives while nobody leads
    pair.wait_holder("op-b")
    # When op-b took the Lease, as it stamped it: how long this test took to notice (its
    # polling and reads, slow on a loaded machine) is no part of it.
    acquired = pair.lease().spec.acquire_time
    takeover = (acquired - killed).total_seconds()
    print(f"\ntakeover after SIGKILL of the leader: {takeover:.1f} s")
    pair.wait_resolved(first + second)

    for name in first + second:
        pair.assert_applied_once(name)
    # op-a applied the first batch before it died; op-b applied none of those again, and
    # applied the second batch once each.
    applied_a = sorted(what for _, what in a.writes() if what.startswith("apply"))
    applied_b = sorted(what for _, what in b.writes() if what.startswith("apply"))
    ns = pair.namespace
    assert applied_a == sorted(f"apply Deployment {ns}/{n} action 0-restart" for n in first)
    assert applied_b == sorted(f"apply Deployment {ns}/{n} action 0-restart" for n in second)
    # The standby took over once the leader's last renewal was a lease duration old (it
    # counts from when it saw that renewal, which came after it was stamped)...
    assert (acquired - last_renewal).total_seconds() >= LEASE_DURATION, (acquired, last_renewal)
    # ...and not much later: a lease and a few retries after the kill (10 s of it for a
    # loaded machine's scheduling of op-b).
    assert takeover <= LEASE_DURATION + 10, takeover


def test_a_frozen_leader_is_replaced_only_after_it_stopped_acting_and_does_not_act_resumed(
    pair: Pair,
) -> None:
    batches = [[f"{prefix}-{n}" for n in range(3)] for prefix in ("one", "two", "three")]
    pair.targets([name for batch in batches for name in batch])
    pair.policy(window="1s")
    a = pair.replica("op-a")
    pair.wait_holder("op-a")
    b = pair.replica("op-b")
    wait_until(lambda: "leader election: Lease" in b.text(), timeout=60, what="op-b to start")

    pair.incidents(batches[0])
    pair.wait_resolved(batches[0])
    assert len(a.writes()) >= 3 and not b.writes()

    # Freeze the leader: it neither renews nor acts, and its Lease runs out.
    os.kill(a.process.pid, signal.SIGSTOP)
    frozen_at = datetime.now().astimezone()
    # Its last renewal, as it wrote it: it acts no longer than RENEW_DEADLINE after it.
    last_renewal = pair.lease().spec.renew_time
    pair.incidents(batches[1])
    pair.wait_holder("op-b")
    pair.wait_resolved(batches[1])
    first_write_b = min(stamp for stamp, _ in b.writes()).astimezone()
    after_freeze = (first_write_b - frozen_at).total_seconds()
    margin = (first_write_b - last_renewal).total_seconds() - RENEW_DEADLINE
    print(
        f"\nfrozen leader replaced: first write of the new leader {after_freeze:.1f} s after "
        f"the freeze, {margin:.1f} s after the old leader's last moment to act"
    )
    # op-b acts only after op-a's acting window (last renewal + renew deadline) has closed.
    assert margin > 0, (first_write_b, last_renewal)

    # Thaw it: it finds its renewal too old at once, sees op-b's Lease, and does not act.
    resumed = a.size()
    os.kill(a.process.pid, signal.SIGCONT)
    pair.incidents(batches[2])
    pair.wait_resolved(batches[2])
    wait_until(
        lambda: "stopped acting" in a.text(resumed),
        timeout=30,
        what="op-a to report that it stopped acting",
    )
    assert a.writes(resumed) == [], a.text(resumed)
    assert a.process.poll() is None, "op-a is still running, as a standby"
    assert pair.holder() == "op-b"
    applied_b = {what.split()[2] for _, what in b.writes() if what.startswith("apply")}
    assert applied_b == {f"{pair.namespace}/{n}" for n in batches[1] + batches[2]}
    for name in [n for batch in batches for n in batch]:
        pair.assert_applied_once(name)


def test_a_leader_stopped_gracefully_hands_the_lease_over_at_once(pair: Pair) -> None:
    a = pair.replica("op-a")
    pair.wait_holder("op-a")
    b = pair.replica("op-b")
    wait_until(lambda: "leader election: Lease" in b.text(), timeout=60, what="op-b to start")
    standby_log = b.size()
    a.process.terminate()  # SIGTERM, as the kubelet stops a pod
    stopped = time.monotonic()
    handover = pair.wait_holder("op-b") - stopped
    assert a.process.wait(timeout=30) == 0
    print(f"\nhandover after SIGTERM of the leader: {handover:.1f} s")
    # Released, not expired: op-a gave the Lease up, and op-b took it as a free Lease (at its
    # next retry), not as one whose holder stopped renewing (a lease duration later). Asked of
    # what each wrote, not of the seconds this test measured: those include op-a's shutdown
    # and this test's own polling, both slow on a loaded machine.
    assert "released Lease" in a.text(), a.text()[-3000:]
    # (op-b logs its acquisition just after its write of the Lease.)
    wait_until(lambda: "acquired Lease" in b.text(standby_log), timeout=30, what="op-b's log")
    taken = b.text(standby_log)
    assert "expired; taking it" not in taken, taken[-3000:]
