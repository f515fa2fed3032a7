"""What every benchmark needs: percentiles, the API server's request counters, the operator
process and its RSS, a watch that timestamps Deployment writes, bulk creation, the load."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config
from prometheus_client.parser import text_string_to_metric_families
from tests.support.kube import PAUSE_IMAGE, deployment_manifest
from tests.support.objects import GROUP, VERSION
from tests.support.world import INSTALL_NAMESPACE

from localkube.processes import rss_bytes, wait_until
from localkube.testing import ClusterAccess

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
BAD_IMAGE = "registry.k8s.io/pause:broken"
BULK_THREADS = 24

# ------------------------------------------------------------------ figures


def pct(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks (as numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(seconds: list[float]) -> dict[str, Any]:
    """Median and p95 in milliseconds, and how many samples they rest on."""
    return {
        "n": len(seconds),
        "median_ms": round(statistics.median(seconds) * 1000, 1) if seconds else None,
        "p95_ms": round(pct(seconds, 95) * 1000, 1) if seconds else None,
    }


def histogram_quantiles(
    metrics_text: str, name: str, *, label: str, quantiles: Iterable[float] = (50, 95)
) -> dict[str, dict[str, float | int | None]]:
    """Per value of `label`, the count and the quantiles (ms) of histogram `name` in a
    /metrics text, interpolated in the buckets as Prometheus's histogram_quantile does."""
    buckets: dict[str, list[tuple[float, float]]] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != name:
            continue
        for sample in family.samples:
            if sample.name == f"{name}_bucket":
                upper = float(sample.labels["le"])
                buckets.setdefault(sample.labels[label], []).append((upper, sample.value))
    found: dict[str, dict[str, float | int | None]] = {}
    for value, cumulative in buckets.items():
        cumulative.sort()
        total = cumulative[-1][1] if cumulative else 0.0
        figures: dict[str, float | int | None] = {"count": int(total)}
        for q in quantiles:
            figures[f"p{q:g}_ms"] = _bucket_quantile(cumulative, total * q / 100)
        found[value] = figures
    return found


def _bucket_quantile(cumulative: list[tuple[float, float]], rank: float) -> float | None:
    lower_bound, lower_count = 0.0, 0.0
    for upper, count in cumulative:
        if count >= rank and count > 0:
            if upper == float("inf"):
                return round(lower_bound * 1000, 1)  # beyond the last bound: its bound
            share = (rank - lower_count) / max(count - lower_count, 1e-9)
            return round((lower_bound + (upper - lower_bound) * share) * 1000, 1)
        lower_bound, lower_count = upper, count
    return None


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def record(section: str, **figures: Any) -> None:
    """Append one result to $MITIGATOR_BENCH_RESULTS (read by benchmarks.render), and print it."""
    entry = {"section": section, "at": time.time(), "loadavg": loadavg(), **figures}
    print(f"\nbench {section}: {json.dumps(entry, default=str)}")
    path = os.environ.get("MITIGATOR_BENCH_RESULTS")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(entry, default=str) + "\n")


# ------------------------------------------------------------------ API server


def pooled_client(cluster: ClusterAccess, size: int = 32) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = size
    return client.ApiClient(configuration)


def raw_get(
    api_client: client.ApiClient,
    path: str,
    *,
    query: list[tuple[str, str]] | None = None,
    timeout: tuple[float, float] = (10, 60),
) -> Any:
    """A GET of any path, as the urllib3 response (not read yet: it may be a stream)."""
    method, url, headers, _, _ = api_client.param_serialize(
        "GET", path, query_params=query or [], auth_settings=["BearerToken"]
    )
    return api_client.call_api(
        method, url, header_params=headers, _request_timeout=timeout
    ).response


def request_counts(api_client: client.ApiClient) -> Counter[tuple[str, str, str]]:
    """`apiserver_request_total` from the API server's /metrics, summed by verb, resource
    (group/resource[/subresource]) and nothing else."""
    text = raw_get(api_client, "/metrics").data.decode()
    counts: Counter[tuple[str, str, str]] = Counter()
    for family in text_string_to_metric_families(text):
        if family.name != "apiserver_request":
            continue
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            labels = sample.labels
            resource = labels.get("resource", "")
            if labels.get("group"):
                resource = f"{resource}.{labels['group']}"
            if labels.get("subresource"):
                resource += f"/{labels['subresource']}"
            counts[(labels.get("verb", ""), resource, labels.get("code", ""))] += int(sample.value)
    return counts


def by_verb_resource(delta: Counter[tuple[str, str, str]]) -> dict[str, int]:
    merged: Counter[str] = Counter()
    for (verb, resource, _code), value in delta.items():
        if value:
            merged[f"{verb} {resource}"] += value
    return dict(sorted(merged.items()))


WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE", "APPLY")


def verb_totals(per_item: dict[str, float]) -> dict[str, float]:
    writes = sum(v for k, v in per_item.items() if k.split()[0] in WRITE_VERBS)
    lists = sum(v for k, v in per_item.items() if k.split()[0] == "LIST")
    gets = sum(v for k, v in per_item.items() if k.split()[0] == "GET")
    return {"writes": round(writes, 2), "lists": round(lists, 2), "gets": round(gets, 2)}


# ------------------------------------------------------------------ the operator


class Operator:
    """`mitigator run` as its own process, for one namespace, with production tick settings
    (the tests run faster ticks): what is measured is what a user deploys."""

    def __init__(
        self, cluster_kubeconfig: Path, prometheus_url: str, namespace: str, log: Path, **env: str
    ) -> None:
        # The benchmarks' own settings stay here; a diagnosis hook (MITIGATOR_DEBUG_*) goes on.
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("MITIGATOR_") or k.startswith("MITIGATOR_DEBUG_")
        }
        self.env = {
            **inherited,
            "PYTHONPATH": os.pathsep.join(str(ROOT / part) for part in ("operator", "tools", ".")),
            "KUBECONFIG": str(cluster_kubeconfig),
            "MITIGATOR_PROMETHEUS_URL": prometheus_url,
            # Leader election as installed: a Lease in mitigator-system (the only namespace
            # where its RBAC grants leases; in the watched one it is refused and the operator
            # never leads, so never acts), one per watched namespace, production timings.
            "MITIGATOR_LEADER_ELECTION": "true",
            "MITIGATOR_LEASE_NAMESPACE": INSTALL_NAMESPACE,
            "MITIGATOR_LEASE_NAME": f"mitigator-leader-{namespace}",
            **env,
        }
        self.namespace = namespace
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mitigator", "run", "--standalone", "-n", self.namespace],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_mib(self) -> float:
        rss = rss_bytes(self.pid)
        if rss is None:
            raise RuntimeError("no VmRSS")
        return round(rss / 2**20, 1)

    def log_count(self, text: str) -> int:
        """How many times the operator's log says `text`."""
        return self.log.read_text(errors="replace").count(text)

    def wait_log(self, text: str, *, timeout: float, more_than: int = 0) -> None:
        """Until the operator's log says `text` more than `more_than` times."""
        wait_until(
            lambda: self.log_count(text) > more_than,
            timeout=timeout,
            what=f"{text!r} in the operator's log",
            interval=0.5,
        )

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class RssSampler:
    """The operator's RSS every `every` seconds in a thread; `peak` since the last reset."""

    def __init__(self, operator: Operator, every: float = 0.25) -> None:
        self.operator, self.every = operator, every
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.operator.rss_mib())
            except (OSError, RuntimeError):
                return
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def rss_settled(operator: Operator, *, seconds: float = 6.0) -> float:
    """RSS once it stops moving: the median of samples over `seconds`."""
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(operator.rss_mib())
        time.sleep(0.5)
    return round(statistics.median(samples), 1)


# ------------------------------------------------------------------ watching writes


class DeploymentWatch:
    """A raw watch of a namespace's Deployments: for each, when (this process's monotonic
    clock, at receipt) each generation was first seen. A spec write is accepted by the API
    server before its watch event leaves it, so "seen here" bounds "accepted" from above by
    one local hop, the same hop for every writer compared."""

    def __init__(self, cluster: ClusterAccess, namespace: str) -> None:
        self.api = pooled_client(cluster, 2)
        self.namespace = namespace
        self.seen: dict[str, dict[int, float]] = {}
        self.annotations: dict[str, dict[str, str]] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._version = ""

    def __enter__(self) -> DeploymentWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._stream()
            except Exception:
                time.sleep(0.2)

    def _stream(self) -> None:
        query = [("watch", "true"), ("allowWatchBookmarks", "true"), ("timeoutSeconds", "600")]
        if self._version:
            query.append(("resourceVersion", self._version))
        response = raw_get(
            self.api,
            f"/apis/apps/v1/namespaces/{self.namespace}/deployments",
            query=query,
            timeout=(10, 700),
        )
        buffer = b""
        for chunk in response.stream(65536):
            now = time.monotonic()
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.strip():
                    self._event(json.loads(line), now)
            if self._stop.is_set():
                return

    def _event(self, event: dict[str, Any], now: float) -> None:
        obj = event.get("object") or {}
        meta = obj.get("metadata") or {}
        if event.get("type") == "ERROR":
            self._version = ""
            return
        self._version = meta.get("resourceVersion", self._version)
        if event.get("type") not in ("ADDED", "MODIFIED"):
            return
        name, generation = meta["name"], int(meta.get("generation", 0))
        with self._cond:
            self.seen.setdefault(name, {}).setdefault(generation, now)
            self.annotations[name] = dict(meta.get("annotations") or {})
            self._cond.notify_all()

    def generation(self, name: str) -> int:
        with self._cond:
            return max(self.seen.get(name, {0: 0}))

    def wait_generation(self, name: str, above: int, *, timeout: float) -> float | None:
        """When a generation above `above` was first seen (None: not within `timeout`)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                later = [t for g, t in self.seen.get(name, {}).items() if g > above]
                if later:
                    return min(later)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def wait_seen(self, names: Iterable[str], *, timeout: float) -> None:
        wanted = set(names)
        wait_until(
            lambda: wanted <= set(self.seen), timeout=timeout, what="the watch to see them all"
        )


# ------------------------------------------------------------------ bulk objects


def in_parallel(work: Callable[[T], Any], items: Iterable[T], threads: int = BULK_THREADS) -> None:
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(work, items):
            pass


def create_deployments(
    api_client: client.ApiClient,
    namespace: str,
    names: list[str],
    *,
    replicas: int = 1,
    labels: dict[str, str] | None = None,
    second_revision: bool = False,
    wait: float | None = 600,
) -> bool:
    """Deployments (optionally rolled out once more to a bad image, so that a rollback has
    somewhere to go back to), waited for until their rollouts are complete (up to `wait`
    seconds; None: not at all). Whether they all completed. (The controller-manager's client
    is rate-limited to about 5 Deployment syncs a second here: 1,000 take over 3 minutes.)"""
    apps = client.AppsV1Api(api_client)

    def create(name: str) -> None:
        apps.create_namespaced_deployment(
            namespace, deployment_manifest(name, replicas=replicas, labels=labels)
        )

    in_parallel(create, names)
    if second_revision:
        wait_rollouts(api_client, namespace, names)

        def break_it(name: str) -> None:
            apps.patch_namespaced_deployment(
                name,
                namespace,
                {
                    "spec": {
                        "template": {"spec": {"containers": [{"name": "app", "image": BAD_IMAGE}]}}
                    }
                },
            )

        in_parallel(break_it, names)
    if wait is None:
        return False
    try:
        wait_rollouts(api_client, namespace, names, timeout=wait)
    except TimeoutError:
        return False
    return True


def wait_rollouts(
    api_client: client.ApiClient, namespace: str, names: list[str], *, timeout: float = 600
) -> None:
    apps = client.AppsV1Api(api_client)
    wanted = set(names)

    def complete() -> bool:
        # Unparsed (_preload_content=False): an HTTP response, whatever the client's types say.
        raw: Any = apps.list_namespaced_deployment(namespace, _preload_content=False)
        done = 0
        for dep in json.loads(raw.data)["items"]:
            if dep["metadata"]["name"] not in wanted:
                continue
            spec, status = dep["spec"], dep.get("status") or {}
            if (
                status.get("observedGeneration", 0) >= dep["metadata"]["generation"]
                and status.get("updatedReplicas", 0) == spec["replicas"]
                and status.get("availableReplicas", 0) == spec["replicas"]
                and status.get("replicas", 0) == spec["replicas"]
            ):
                done += 1
        return done == len(wanted)

    wait_until(complete, timeout=timeout, what=f"{len(wanted)} rollouts in {namespace}", interval=1)


def incident(name: str, target: str, actions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Incident",
        "metadata": {"name": name},
        "spec": {
            "target": {"kind": "Deployment", "name": target},
            "severity": "P1",
            "title": "benchmark",
            "actions": actions,
        },
    }


# Metrics that say "healthy" whatever the target: verification passes after its window, so
# an Incident goes all the way to Resolved (a real Prometheus answers these queries).
HEALTHY_QUERIES = {"errorRate": "vector(0)", "p95Latency": "vector(0.05)"}


def policy(
    name: str,
    *,
    app_label: str,
    window: str = "2s",
    guardrails: dict[str, Any] | None = None,
    queries: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MitigationPolicy",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"bench": app_label}},
            "metrics": queries or HEALTHY_QUERIES,
            "rules": [{"name": "any", "actions": [{"restart": {}}]}],
            "verification": {"window": window, "timeout": "5m"},
            "guardrails": {"maxConcurrentMitigations": 2000, **(guardrails or {})},
        },
    }


def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


def create_incident(api_client: client.ApiClient, namespace: str, body: dict[str, Any]) -> None:
    custom(api_client).create_namespaced_custom_object(GROUP, VERSION, namespace, "incidents", body)


def create_policy(api_client: client.ApiClient, namespace: str, body: dict[str, Any]) -> None:
    custom(api_client).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "mitigationpolicies", body
    )


# The benchmarks' own requests, to be taken out of what the API server counted.
OWN_REQUESTS: Counter[tuple[str, str, str]] = Counter()


def phases(api_client: client.ApiClient, namespace: str) -> dict[str, str]:
    OWN_REQUESTS[("LIST", "incidents.mitigator.luminamind.io", "200")] += 1
    raw: Any = custom(api_client).list_namespaced_custom_object(
        GROUP, VERSION, namespace, "incidents", _preload_content=False
    )
    return {
        item["metadata"]["name"]: (item.get("status") or {}).get("phase", "")
        for item in json.loads(raw.data)["items"]
    }


def wait_phases(
    api_client: client.ApiClient,
    namespace: str,
    names: Iterable[str],
    wanted: tuple[str, ...] = ("Resolved", "Escalated", "Failed"),
    *,
    timeout: float = 300,
) -> dict[str, str]:
    names = set(names)
    seen: dict[str, str] = {}

    def done() -> bool:
        seen.update(phases(api_client, namespace))
        return all(seen.get(n) in wanted for n in names)

    wait_until(done, timeout=timeout, what=f"{len(names)} incidents to reach {wanted}", interval=1)
    return {n: seen[n] for n in names}


@contextmanager
def running(operator: Operator) -> Iterator[Operator]:
    operator.start()
    try:
        yield operator
    finally:
        operator.stop()


__all__ = ["PAUSE_IMAGE"]
