"""Diagnosis, not a figure (not run by `make bench`): where the operator's memory is after
a burst of Incidents, and whether a second burst grows it again (a leak would). N Incidents
on N Deployments as in test_4_scale, then the same N again on the same targets; heap
snapshots (MITIGATOR_DEBUG_SNAPSHOTS, observability/memory_snapshots.py) at idle, once all
acted, after each resolution. Run with:

    MITIGATOR_DIAGNOSIS_SIZE=1000 MITIGATOR_DIAGNOSIS_OUT=/tmp/heap \
      pytest -q -s benchmarks/test_memory_diagnosis.py

`MITIGATOR_DIAGNOSIS_FRAMES` (0 unless set): tracemalloc depth; tracing is affordable at a
few hundred Incidents at most. Read `index.jsonl` and the `*.mallocstats` in the directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import pytest
from kubernetes import client
from tests.support.kube import create_namespace

from benchmarks.conftest import OperatorFactory
from benchmarks.harness import (
    DeploymentWatch,
    Operator,
    RssSampler,
    create_deployments,
    create_incident,
    create_policy,
    in_parallel,
    incident,
    policy,
    rss_settled,
    wait_phases,
)
from localkube.processes import wait_until
from localkube.testing import ClusterAccess
from mitigator.handlers.allocator import FIRST_TRIM, TRIM, TRIM_EVERY_SECONDS

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        not os.environ.get("MITIGATOR_DIAGNOSIS_OUT"), reason="MITIGATOR_DIAGNOSIS_OUT not set"
    ),
]


def _snapshot(operator: Operator, out: Path, label: str) -> None:
    index = out / "index.jsonl"

    def lines() -> int:
        return len(index.read_text().splitlines()) if index.exists() else 0

    before = lines()
    os.kill(operator.pid, signal.SIGUSR1)
    wait_until(lambda: lines() > before, timeout=600, what="a heap snapshot", interval=1)
    last = json.loads(index.read_text().splitlines()[-1])
    with open(out / "labels.txt", "a") as labels:
        labels.write(f"{last['n']} {label}\n")
    print(f"\n{label}: RSS {last['rss_mib']} MiB, malloc {last['malloc_in_use_mib']} MiB")


def _burst(
    api: client.ApiClient, watch: DeploymentWatch, namespace: str, names: list[str], prefix: str
) -> None:
    generations = {name: watch.generation(name) for name in names}

    def create(name: str) -> None:
        create_incident(api, namespace, incident(prefix + name, name, [{"restart": {}}]))

    in_parallel(create, names)
    deadline = time.monotonic() + 900
    for name in names:
        watch.wait_generation(name, generations[name], timeout=deadline - time.monotonic())


@pytest.mark.timeout(3600)
def test_memory_after_two_bursts(
    cluster: ClusterAccess, cluster_api: client.ApiClient, start_operator: OperatorFactory
) -> None:
    size = int(os.environ.get("MITIGATOR_DIAGNOSIS_SIZE", "300"))
    out = Path(os.environ["MITIGATOR_DIAGNOSIS_OUT"])
    frames = os.environ.get("MITIGATOR_DIAGNOSIS_FRAMES", "0")
    out.mkdir(parents=True, exist_ok=True)
    namespace = create_namespace(cluster_api, prefix="mb")
    # The second burst acts on the same targets minutes later: no cooldown in the way.
    body = policy("bench", app_label="scale", guardrails={"cooldown": "1s"})
    body["spec"]["verification"]["requireAllPodsReady"] = False
    create_policy(cluster_api, namespace, body)
    names = [f"d{i}" for i in range(size)]
    labels = {"bench": "scale"}
    create_deployments(cluster_api, namespace, ["warm", *names], replicas=0, labels=labels, wait=60)
    operator = start_operator(namespace, MITIGATOR_DEBUG_SNAPSHOTS=f"{out}:{frames}")
    with DeploymentWatch(cluster, namespace) as watch:
        watch.wait_seen(["warm", *names], timeout=300)
        _burst(cluster_api, watch, namespace, ["warm"], "")
        with contextlib.suppress(TimeoutError):
            wait_phases(cluster_api, namespace, ["warm"], timeout=60)
        operator.wait_log(FIRST_TRIM, timeout=120)
        print(f"\nidle settled: {rss_settled(operator)} MiB")
        _snapshot(operator, out, "idle")
        for round_, prefix in enumerate(("", "again-"), start=1):
            with RssSampler(operator) as sampler:
                _burst(cluster_api, watch, namespace, names, prefix)
                _snapshot(operator, out, f"burst {round_}: all acted")
                with contextlib.suppress(TimeoutError):
                    wait_phases(cluster_api, namespace, [prefix + n for n in names], timeout=900)
                trims = operator.log_count(TRIM)
            with contextlib.suppress(TimeoutError):
                operator.wait_log(TRIM, timeout=TRIM_EVERY_SECONDS + 5, more_than=trims)
            print(f"\nburst {round_}: peak {sampler.peak}, after {rss_settled(operator)} MiB")
            _snapshot(operator, out, f"burst {round_}: resolved")
