"""A burst of 1,000 distinct alerts (1,000 alert groups) posted to the bridge, which runs as
its own process (`mitigator bridge`, as deployed) against the real API server.

Every alert must be accounted for: an Incident created for it, or counted unmapped (1 in 20
names no Deployment). The wall time from the first request to the last answer is recorded in
docs/benchmarks.md, for several bridge concurrencies (Kubernetes API calls in flight), which
is the measurement behind the default. No timing is asserted; completeness is.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes import client
from tests.support.bridge import TOKEN, alert, list_incidents, webhook
from tests.support.kube import create_namespace, delete_namespace

from localkube.processes import ManagedProcess, free_port, wait_until
from localkube.testing import ClusterAccess
from localkube.versions import ETCD_VERSION, KUBERNETES_VERSION

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "benchmarks.md"
ALERTS = 1000
UNMAPPED_EVERY = 20  # every 20th alert names no Deployment
SENDERS = 100  # requests in flight (Alertmanager flushes every group concurrently)
CONCURRENCIES = (1, 4, 16, 32)
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


def _machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def _write_report(bursts: list[Burst]) -> None:
    start, end = "<!-- bridge-burst:start -->", "<!-- bridge-burst:end -->"
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = []
    for burst in bursts:
        p50 = statistics.median(burst.latencies)
        p95 = statistics.quantiles(burst.latencies, n=20)[18]
        marker = " (default)" if burst.concurrency == DEFAULT_CONCURRENCY else ""
        rows.append(
            f"| {when} | {burst.concurrency}{marker} | {ALERTS} | {burst.created} | "
            f"{burst.unmapped} | **{burst.seconds:.2f} s** | {burst.rate:.0f} | "
            f"{p50 * 1000:.0f} ms | {p95 * 1000:.0f} ms | {burst.resend_seconds:.2f} s |"
        )
    section = "\n".join(
        [
            start,
            f"Last run: {when}, on {_machine()}; local control plane: kube-apiserver "
            f"{KUBERNETES_VERSION}, etcd {ETCD_VERSION}, all on the same machine as the bridge "
            f"and the load generator ({SENDERS} requests in flight).",
            "",
            "| date | bridge concurrency | alerts | Incidents created | unmapped | wall time "
            "| alerts/s | p50 request | p95 request | resend of all 1,000 |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            end,
        ]
    )
    text = REPORT.read_text() if REPORT.exists() else ""
    if start in text and end in text:
        text = text[: text.index(start)] + section + text[text.index(end) + len(end) :]
    else:
        text = (text.rstrip() + "\n\n" if text else "# Benchmarks\n\n") + section + "\n"
    REPORT.write_text(text)


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
    _write_report(bursts)
