"""10, 100 and 1,000 concurrent Incidents on as many Deployments, each a restart
(measurements 4 and 5): how many are mitigated per second, time to first action as the count
grows, the operator's RSS idle (after its allocator's first trim), at the burst's peak and
after the Incidents resolved (after a trim that handed the burst's free pages back).

One fresh operator per size, in a namespace of its own holding exactly that many Deployments,
with no pods: at 1,000 the pods' churn would take the run's whole budget on two cores (so
the policy does not require ready pods). A restart rather than a rollback: a rollback needs
two revisions of each target, and the controller-manager here syncs about 5 Deployments a
second, so 1,000 second revisions alone would take over 3 minutes. For the same reason the
setup waits at most a minute for the Deployments' first rollouts, and resolution (which waits
for each rollout the restart starts) at most 4 minutes; what was not resolved by then is
reported as such. The Incidents are created by 24 client threads at once; each one's time
runs from just before its own create to its target's new generation in this process's watch.
"""

from __future__ import annotations

import contextlib
import os
import time
import urllib.request
from collections import Counter

import pytest
from kubernetes import client
from tests.support.kube import create_namespace

from benchmarks.conftest import OperatorFactory
from benchmarks.harness import (
    OWN_REQUESTS,
    DeploymentWatch,
    RssSampler,
    by_verb_resource,
    create_deployments,
    create_incident,
    create_policy,
    histogram_quantiles,
    in_parallel,
    incident,
    pct,
    phases,
    policy,
    record,
    request_counts,
    rss_settled,
    verb_totals,
    wait_phases,
)
from localkube.processes import free_port
from localkube.testing import ClusterAccess
from mitigator.handlers.allocator import FIRST_TRIM, TRIM, TRIM_EVERY_SECONDS

HANDLER_QUEUE_WAIT = "mitigator_handler_queue_wait_seconds"


def _metrics_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        return str(answer.read().decode())


pytestmark = pytest.mark.cluster

RESOLVE_WITHIN = 240.0
SIZES = tuple(int(n) for n in os.environ.get("MITIGATOR_BENCH_SIZES", "10,100,1000").split(","))


@pytest.mark.timeout(900)
@pytest.mark.parametrize("size", SIZES)
def test_concurrent_incidents(
    cluster: ClusterAccess,
    cluster_api: client.ApiClient,
    start_operator: OperatorFactory,
    size: int,
) -> None:
    namespace = create_namespace(cluster_api, prefix="mb")
    body = policy("bench", app_label="scale")
    body["spec"]["verification"]["requireAllPodsReady"] = False
    create_policy(cluster_api, namespace, body)
    names = [f"d{i}" for i in range(size)]
    started = time.monotonic()
    settled = create_deployments(
        cluster_api, namespace, ["warm", *names], replicas=0, labels={"bench": "scale"}, wait=60
    )
    setup_s = time.monotonic() - started
    metrics_port = free_port()
    operator = start_operator(namespace, MITIGATOR_METRICS_PORT=str(metrics_port))
    with DeploymentWatch(cluster, namespace) as watch:
        watch.wait_seen(["warm", *names], timeout=120)
        before = watch.generation("warm")
        create_incident(cluster_api, namespace, incident("warm", "warm", [{"restart": {}}]))
        assert watch.wait_generation("warm", before, timeout=120), operator.log_tail()
        # Its resolution waits for the controller-manager, still busy with the new
        # Deployments at 1,000; the operator is warm once it has acted.
        with contextlib.suppress(TimeoutError):
            wait_phases(cluster_api, namespace, ["warm"], timeout=30)
        # Idle is what the process settles at once its allocator has handed free pages back
        # (allocator.py, every 30 s): before the first trim it still holds its start-up's peak.
        untrimmed = operator.rss_mib()
        operator.wait_log(FIRST_TRIM, timeout=120)
        idle = rss_settled(operator)
        generations = {name: watch.generation(name) for name in names}
        sent: dict[str, float] = {}

        def create(name: str) -> None:
            sent[name] = time.monotonic()
            create_incident(cluster_api, namespace, incident(name, name, [{"restart": {}}]))

        counts_before = request_counts(cluster_api)
        own = OWN_REQUESTS.copy()
        with RssSampler(operator) as sampler:
            burst = time.monotonic()
            in_parallel(create, names)
            created_s = time.monotonic() - burst
            deadline = burst + max(120.0, size * 0.3)
            acted = {
                name: watch.wait_generation(
                    name, generations[name], timeout=max(0.0, deadline - time.monotonic())
                )
                for name in names
            }
            # How long work waited for a handler thread during the burst, first ticks apart
            # (handlers/first_ticks_first.py).
            queue_wait = histogram_quantiles(
                _metrics_text(metrics_port), HANDLER_QUEUE_WAIT, label="work"
            )
            # Not all resolved in time is reported below as the phases reached.
            with contextlib.suppress(TimeoutError):
                wait_phases(cluster_api, namespace, names, timeout=RESOLVE_WITHIN)
            outcome = {n: p for n, p in phases(cluster_api, namespace).items() if n in acted}
            resolved_s = time.monotonic() - burst
            peak = sampler.peak
            trims = operator.log_count(TRIM)
        counts = (request_counts(cluster_api) - counts_before) - (OWN_REQUESTS - own)
        # After, as idle: once a trim has handed the burst's free pages back (logged when it
        # hands back 8 MiB or more); none within a period means there was nothing to give.
        with contextlib.suppress(TimeoutError):
            operator.wait_log(TRIM, timeout=TRIM_EVERY_SECONDS + 5, more_than=trims)
        after = rss_settled(operator)
    times = [acted[n] - sent[n] for n in names if acted[n] is not None]
    last = max((t for t in acted.values() if t is not None), default=burst)
    finals = Counter(outcome.values())
    per_incident = {k: round(v / size, 2) for k, v in by_verb_resource(counts).items()}
    record(
        "scale",
        incidents=size,
        setup_s=round(setup_s, 1),
        setup_rollouts_complete=settled,
        creates_s=round(created_s, 2),
        acted=len(times),
        last_action_after_burst_s=round(last - burst, 2),
        mitigated_per_s=round(len(times) / max(last - burst, 1e-3), 1),
        all_resolved_s=round(resolved_s, 1),
        ttfa_p50_ms=round(pct(times, 50) * 1000) if times else None,
        ttfa_p95_ms=round(pct(times, 95) * 1000) if times else None,
        ttfa_max_ms=round(max(times) * 1000) if times else None,
        phases=dict(finals),
        rss_idle_mib=idle,
        rss_idle_untrimmed_mib=untrimmed,
        rss_peak_mib=peak,
        rss_after_mib=after,
        requests_per_incident=verb_totals(per_incident),
        requests_per_incident_by_resource=per_incident,
        handler_queue_wait=queue_wait,
    )
    assert len(times) == size, f"{size - len(times)} targets not acted on"
