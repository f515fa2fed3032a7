"""Objects no live Incident concerns must not slow the operator nor grow its memory
(measurement 7): 5,000 Deployments and 5,000 resolved Incidents in the namespace it watches.

The same namespace is measured twice, each time with a fresh operator: first holding only
the Deployments the probes act on, then with the unrelated objects added (created while no
operator runs, so that their creation is not what is measured; a fresh operator then reads
them all when it starts, as after a restart). Probes: RSS once settled, and time to first
action of a few rollbacks, one at a time.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

import pytest
from kubernetes import client
from tests.support.objects import GROUP, VERSION

from benchmarks.conftest import OperatorFactory
from benchmarks.harness import (
    DeploymentWatch,
    Operator,
    create_deployments,
    create_incident,
    create_policy,
    in_parallel,
    incident,
    policy,
    record,
    rss_settled,
    summary,
    wait_phases,
)
from localkube.testing import ClusterAccess
from mitigator.handlers.allocator import FIRST_TRIM, TRIM, TRIM_EVERY_SECONDS

pytestmark = pytest.mark.cluster

UNRELATED = int(os.environ.get("MITIGATOR_BENCH_UNRELATED", "5000"))
PROBES = 8


def _probe(
    cluster: ClusterAccess,
    api: client.ApiClient,
    operator: Operator,
    namespace: str,
    prefix: str,
) -> dict[str, Any]:
    names = [f"{prefix}-{i}" for i in range(PROBES)]
    with DeploymentWatch(cluster, namespace) as watch:
        watch.wait_seen([*names, f"{prefix}-warm"], timeout=300)
        warm = f"{prefix}-warm"
        before = watch.generation(warm)
        ready = time.monotonic()
        create_incident(api, namespace, incident(warm, warm, [{"restart": {}}]))
        assert watch.wait_generation(warm, before, timeout=300), operator.log_tail()
        first_s = time.monotonic() - ready
        with contextlib.suppress(TimeoutError):  # its rollout waits for the controller
            wait_phases(api, namespace, [warm], timeout=60)
        # Settled means after the allocator's first trim (allocator.py, 30 s after the start):
        # before it, RSS still holds the start's peak, which the crowded start has passed by
        # then and the quick one alone has not.
        operator.wait_log(FIRST_TRIM, timeout=120)
        rss = rss_settled(operator)
        trims = operator.log_count(TRIM)
        times = []
        for name in names:
            before = watch.generation(name)
            started = time.monotonic()
            create_incident(api, namespace, incident(name, name, [{"rollback": {}}]))
            seen = watch.wait_generation(name, before, timeout=60)
            if seen is not None:
                times.append(seen - started)
        with contextlib.suppress(TimeoutError):
            wait_phases(api, namespace, names, timeout=120)
        # As the scale bench does: after a trim that followed the probes (one is logged when it
        # hands back 8 MiB or more; none within a period means there was nothing to give).
        with contextlib.suppress(TimeoutError):
            operator.wait_log(TRIM, timeout=TRIM_EVERY_SECONDS + 5, more_than=trims)
        rss_after = rss_settled(operator)
    return {
        "rss_mib": rss,
        "rss_after_probes_mib": rss_after,
        "first_action_after_start_s": round(first_s, 2),
        "ttfa": summary(times),
    }


def _resolved_incidents(api: client.ApiClient, namespace: str, count: int) -> None:
    custom = client.CustomObjectsApi(api)
    now = "2026-01-01T00:00:00Z"

    def create(i: int) -> None:
        name = f"old-{i}"
        body = incident(name, f"gone-{i}", [{"restart": {}}])
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "incidents", body)
        custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            "incidents",
            name,
            # As this build leaves a Resolved Incident that owes no resolved notice: settled.
            {
                "status": {
                    "phase": "Resolved",
                    "detectedAt": now,
                    "resolvedAt": now,
                    "settled": True,
                }
            },
        )

    in_parallel(create, range(count))


@pytest.mark.timeout(1500)
def test_unrelated_objects(
    cluster: ClusterAccess,
    cluster_api: client.ApiClient,
    bench_namespace: str,
    start_operator: OperatorFactory,
) -> None:
    ns = bench_namespace
    create_policy(cluster_api, ns, policy("bench", app_label="probe"))
    probes = [f"{p}-{i}" for p in ("a", "b") for i in range(PROBES)] + ["a-warm", "b-warm"]
    create_deployments(cluster_api, ns, probes, labels={"bench": "probe"}, second_revision=True)
    operator = start_operator(ns)
    alone = _probe(cluster, cluster_api, operator, ns, "a")
    operator.stop()

    started = time.monotonic()
    unrelated = [f"other-{i}" for i in range(UNRELATED)]
    # Unrelated: another app's Deployments (no policy selects them), no pods (replicas 0).
    # Not waited for: the controller-manager syncs about 5 Deployments a second here, so it
    # is still giving them ReplicaSets while the probes run (a harsher test, not a kinder one).
    create_deployments(cluster_api, ns, unrelated, replicas=0, labels={"bench": "other"}, wait=None)
    _resolved_incidents(cluster_api, ns, UNRELATED)
    setup_s = time.monotonic() - started
    operator = start_operator(ns)
    crowded = _probe(cluster, cluster_api, operator, ns, "b")
    growth = crowded["rss_mib"] / alone["rss_mib"] - 1
    slower = (
        crowded["ttfa"]["median_ms"] / alone["ttfa"]["median_ms"]
        if alone["ttfa"]["median_ms"]
        else None
    )
    record(
        "unrelated",
        unrelated_deployments=UNRELATED,
        resolved_incidents=UNRELATED,
        setup_s=round(setup_s, 1),
        alone=alone,
        crowded=crowded,
        rss_growth_pct=round(growth * 100, 1),
        ttfa_median_ratio=round(slower, 2) if slower else None,
    )
