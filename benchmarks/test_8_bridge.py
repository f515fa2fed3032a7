"""A burst of 1,000 distinct alerts (1,000 alert groups) posted to the bridge, which runs as
its own process (`mitigator bridge`, as deployed) against the real API server.

Every alert must be accounted for: an Incident created for it, or counted unmapped (1 in 20
names no Deployment). The wall time from the first request to the last answer is recorded in
docs/BENCHMARKS.md, for several bridge concurrencies (Kubernetes API calls in flight), which
is the measurement behind the default. No timing is asserted; completeness is.

Then 10,000 alerts in 10 groups (1,000 alerts a group, ten Deployments): one Incident per
group, each recording at most its cap of alerts, with the bridge's RSS before and at peak.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes import client
from tests.support.bridge import TOKEN, alert, list_incidents, webhook
from tests.support.kube import create_namespace, delete_namespace

from benchmarks.harness import record
from localkube.processes import ManagedProcess, free_port, rss_bytes, wait_until
from localkube.testing import ClusterAccess

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[1]
ALERTS = 1000
UNMAPPED_EVERY = 20  # every 20th alert names no Deployment
SENDERS = 100  # requests in flight (Alertmanager flushes every group concurrently)
CONCURRENCIES = tuple(
    int(c) for c in os.environ.get("MITIGATOR_BENCH_BRIDGE_CONCURRENCIES", "4,16").split(",")
)
DEFAULT_CONCURRENCY = 16


@dataclass(frozen=True)
class Burst:
    concurrency: int
    seconds: float
    latencies: list[float]
    created: int
    unmapped: int
    resend_seconds: float

    @property
    def rate(self) -> float:
        return ALERTS / self.seconds


def _payloads(namespace: str) -> list[dict[str, Any]]:
    payloads = []
    for i in range(ALERTS):
        deployment = None if i % UNMAPPED_EVERY == 0 else f"svc-{i % 50}"
        item = alert(namespace, deployment, alertname=f"Burst{i}", fingerprint=f"{i:016x}")
        payloads.append(webhook(item, group_key=f'{{}}:{{burst="{uuid.uuid4().hex}",i="{i}"}}'))
    return payloads


async def _send_all(url: str, payloads: list[dict[str, Any]]) -> tuple[float, list[Any]]:
    gate = asyncio.Semaphore(SENDERS)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    connector = aiohttp.TCPConnector(limit=SENDERS)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def send(payload: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
            async with gate:
                started = time.perf_counter()
                async with session.post(url, json=payload) as response:
                    body = await response.json()
                    return response.status, body, time.perf_counter() - started

        started = time.perf_counter()
        answers = await asyncio.gather(*(send(p) for p in payloads))
        return time.perf_counter() - started, answers


def _start_bridge(
    cluster: ClusterAccess, concurrency: int, workdir: Path
) -> tuple[ManagedProcess, int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MITIGATOR_BRIDGE_")}
    env.update(
        PYTHONPATH=os.pathsep.join(str(ROOT / part) for part in ("operator", "tools")),
        KUBECONFIG=str(cluster.kubeconfig),
        MITIGATOR_BRIDGE_TOKEN=TOKEN,
    )
    process = ManagedProcess(
        name="mitigator-bridge",
        argv=[
            sys.executable,
            "-m",
            "mitigator",
            "bridge",
            f"--port={port}",
            f"--concurrency={concurrency}",
        ],
        log_path=workdir / f"bridge-{concurrency}.log",
        env=env,
    )
    process.start()
    return process, port


def _healthy(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
        return bool(response.status == 200)


def _burst(
    cluster: ClusterAccess,
    api_client: client.ApiClient,
    namespace: str,
    concurrency: int,
    workdir: Path,
) -> Burst:
    process, port = _start_bridge(cluster, concurrency, workdir)
    try:
        wait_until(lambda: _healthy(port), timeout=30, what=f"the bridge: {process.log_tail()}")
        payloads = _payloads(namespace)
        url = f"http://127.0.0.1:{port}/api/v1/alerts"
        seconds, answers = asyncio.run(_send_all(url, payloads))
        # Alertmanager's next group_interval: the same 1,000 groups again, which change nothing.
        resend_seconds, resent = asyncio.run(_send_all(url, payloads))
    finally:
        process.stop()

    # Every alert accounted for, by the answers and by the API server.
    assert [status for status, _, _ in answers] == [200] * ALERTS
    results = [i for _, body, _ in answers for i in body["incidents"]]
    created = {i["name"] for i in results if i["result"] == "created"}
    attached = [i for i in results if i["result"] == "attached"]
    unmapped = [note["fingerprint"] for _, body, _ in answers for note in body["unmapped"]]
    expected_unmapped = len(range(0, ALERTS, UNMAPPED_EVERY))
    assert len(unmapped) == expected_unmapped
    # One Incident per Deployment: the other groups for it are attached to it, not opened.
    targets = {p["alerts"][0]["labels"].get("deployment") for p in payloads} - {None}
    assert len(created) == len(targets)
    assert len(created) + len(attached) == ALERTS - expected_unmapped
    stored = {item["metadata"]["name"] for item in list_incidents(api_client, namespace)}
    assert stored == created
    assert [status for status, _, _ in resent] == [200] * ALERTS
    results = {i["result"] for _, body, _ in resent for i in body["incidents"]}
    assert results == {"unchanged"}
    return Burst(
        concurrency=concurrency,
        seconds=seconds,
        latencies=[latency for _, _, latency in answers],
        created=len(created),
        unmapped=len(unmapped),
        resend_seconds=resend_seconds,
    )


def _report(bursts: list[Burst]) -> None:
    rows = []
    for burst in bursts:
        rows.append(
            {
                "concurrency": burst.concurrency,
                "default": burst.concurrency == DEFAULT_CONCURRENCY,
                "alerts": ALERTS,
                "created": burst.created,
                "unmapped": burst.unmapped,
                "wall_s": round(burst.seconds, 2),
                "alerts_per_s": round(burst.rate),
                "p50_request_ms": round(statistics.median(burst.latencies) * 1000),
                "p95_request_ms": round(statistics.quantiles(burst.latencies, n=20)[18] * 1000),
                "resend_s": round(burst.resend_seconds, 2),
            }
        )
    record("bridge_burst", senders=SENDERS, rows=rows)


def test_a_burst_of_1000_alerts_is_accounted_for(
    cluster: ClusterAccess,
    crds: None,
    api_client: client.ApiClient,
    tmp_path: Path,
) -> None:
    bursts = []
    # The first round only warms up the API server (its caches, the CRD's validators, etcd):
    # without it the first measured row is the slowest whatever its concurrency.
    for round_number, concurrency in enumerate((DEFAULT_CONCURRENCY, *CONCURRENCIES)):
        namespace = create_namespace(api_client)
        try:
            burst = _burst(cluster, api_client, namespace, concurrency, tmp_path)
        finally:
            delete_namespace(api_client, namespace)
        if round_number == 0:
            continue
        bursts.append(burst)
        print(
            f"\nbridge burst: concurrency {concurrency}: {ALERTS} alerts in {burst.seconds:.2f} s "
            f"({burst.rate:.0f}/s), {burst.created} Incidents, {burst.unmapped} unmapped; "
            f"resent in {burst.resend_seconds:.2f} s"
        )
    _report(bursts)


BIG_GROUPS = 10
BIG_PER_GROUP = 1000


def _rss_mib(pid: int) -> float:
    rss = rss_bytes(pid)
    return float("nan") if rss is None else round(rss / 2**20, 1)


def test_10000_alerts_in_10_groups(
    cluster: ClusterAccess,
    crds: None,
    api_client: client.ApiClient,
    tmp_path: Path,
) -> None:
    namespace = create_namespace(api_client)
    process, port = _start_bridge(cluster, DEFAULT_CONCURRENCY, tmp_path)
    try:
        wait_until(lambda: _healthy(port), timeout=30, what=f"the bridge: {process.log_tail()}")
        idle = _rss_mib(process.pid)
        payloads = [
            webhook(
                *(
                    alert(
                        namespace,
                        f"big-{group}",
                        alertname="HighErrorRate",
                        fingerprint=f"{group:04x}{i:012x}",
                        labels={"pod": f"big-{group}-{i}"},
                    )
                    for i in range(BIG_PER_GROUP)
                ),
                group_key=f'{{}}:{{big="{group}"}}',
            )
            for group in range(BIG_GROUPS)
        ]
        size = max(len(json.dumps(p)) for p in payloads)
        url = f"http://127.0.0.1:{port}/api/v1/alerts"
        peak = [idle]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _rss_mib(process.pid))
                done.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        seconds, answers = asyncio.run(_send_all(url, payloads))
        resend_seconds, resent = asyncio.run(_send_all(url, payloads))
        done.set()
        sampler.join()
        after = _rss_mib(process.pid)
    finally:
        process.stop()
    statuses = [status for status, _, _ in answers]
    stored = list_incidents(api_client, namespace)
    recorded_alerts = [len(i["spec"]["source"].get("alerts") or []) for i in stored]
    record(
        "bridge_big_groups",
        alerts=BIG_GROUPS * BIG_PER_GROUP,
        groups=BIG_GROUPS,
        payload_bytes=size,
        statuses=sorted(set(statuses)),
        incidents=len(stored),
        recorded_alerts_per_incident=max(recorded_alerts, default=0),
        wall_s=round(seconds, 2),
        resend_s=round(resend_seconds, 2),
        resend_statuses=sorted({status for status, _, _ in resent}),
        rss_idle_mib=idle,
        rss_peak_mib=peak[0],
        rss_after_mib=after,
    )
    assert statuses == [200] * BIG_GROUPS
    assert len(stored) == BIG_GROUPS
    delete_namespace(api_client, namespace)
