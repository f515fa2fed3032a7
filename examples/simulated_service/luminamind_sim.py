"""A simulated LuminaMind service: the guide's LLM agent service, as its metrics see it.

Under kwok the pods do not really run, so this process stands in for them: it watches its
Deployment and its pods through the API and serves, for each pod, what that pod's process
would export (`luminamind_requests_total{status}`, `luminamind_request_duration_seconds`,
`luminamind_memory_bytes`, `luminamind_tool_errors_total{tool}`, with the `pod` label the
scrape would add), and `luminamind_ready_replicas` for the Deployment (as kube-state-metrics
would). Like a real process's, a pod's series are born at their first sample (a 5xx series at
the first error), reset when its container restarts, and are gone with the pod; only ready
pods get traffic. The values follow what each pod runs:

- an image tag marked bad (containing "bad", or listed in --bad-tags) raises the 5xx rate;
  one marked "clean" serves no 5xx at all;
- load per ready replica drives latency, so scaling up lowers p95; the Deployment annotation
  `sim.luminamind.io/traffic: "5"` multiplies the traffic (a surge), without a rollout;
- `sim.luminamind.io/leak: "true"` makes a pod's memory and latency grow with the time since
  it started (or since the leak was switched on, if later), until a restart replaces it;
- `sim.luminamind.io/web-search: down` makes the web-search tool fail, which errors requests
  unless the container has DISABLE_WEB_SEARCH=true;
- zero ready replicas is an outage: no pod serves, clients get 503s that no pod counts; and
  `sim.luminamind.io/outage: "true"` (the guide's "Redis connection failure") fails every
  request the pods serve;
- `GET /probe` answers what a client of the Service gets: 503 with Retry-After while the
  Service selects the maintenance backend (`--maintenance-label`), else 200 or 500.

Run: python luminamind_sim.py --namespace N --deployment D --port P [--kubeconfig K]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kubernetes import client, config
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

ANNOTATION = "sim.luminamind.io/"
BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 7.5, 10, 15, 20, 30, 45, 60, 90)
# Enough traffic that a 15s window holds thousands of requests: the demo policy checks a 0.5%
# error rate over 15s, and at a few hundred requests the base 0.1% alone would cross it by
# chance (three errors in a window), so a verification would pass or fail by luck.
BASE_RPS = 200.0  # requests per second at traffic 1x
CAPACITY_PER_REPLICA = 100.0  # requests per second one replica serves at base latency
BASE_LATENCY_SECONDS = 0.8
BAD_IMAGE_ERROR_RATE = 0.30
WEB_SEARCH_ERROR_RATE = 0.08
BASE_ERROR_RATE = 0.001
LEAK_BYTES_PER_SECOND = 100 * 2**20
LEAK_LATENCY_PER_MINUTE = 4.0


def _handler(sim: Simulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/metrics"):
                body, status, headers = generate_latest(sim.registry), 200, {}
                headers["Content-Type"] = CONTENT_TYPE_LATEST
            elif self.path.startswith("/probe"):
                status, headers = sim.probe()
                body = f"{status}\n".encode()
            else:
                body, status, headers = b"not found\n", 404, {}
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def _service_selects(core: client.CoreV1Api, namespace: str, name: str, deployed: Deployed) -> bool:
    try:
        selector = core.read_namespaced_service(name, namespace).spec.selector or {}
    except client.ApiException:
        return True  # no Service: clients reach the pods some other way
    return all(deployed.pod_labels.get(k) == v for k, v in selector.items())


@dataclass(frozen=True)
class Pod:
    """One pod of the Deployment: what its process runs, and since when."""

    name: str
    ready: bool
    started_at: datetime | None
    restarts: int
    image: str
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Deployed:
    """What the Deployment says, reduced to what the simulation reacts to."""

    ready: int
    desired: int
    image: str
    env: dict[str, str]
    annotations: dict[str, str]
    rolled_out_at: datetime | None
    pod_labels: dict[str, str] = field(default_factory=dict)
    pods: tuple[Pod, ...] = ()


@dataclass(frozen=True)
class Behaviour:
    rps: float
    error_rate: float
    latency_seconds: float
    memory_bytes: float
    web_search_failing: bool = False


def behaviour(deployed: Deployed, *, bad_tags: frozenset[str], now: datetime) -> Behaviour:
    """The service's condition for what is deployed (pure, so it can be tested and explained)."""
    traffic = float(deployed.annotations.get(f"{ANNOTATION}traffic") or "1")
    rps = BASE_RPS * traffic
    if deployed.ready == 0 or deployed.annotations.get(f"{ANNOTATION}outage") == "true":
        return Behaviour(rps=rps, error_rate=1.0, latency_seconds=0.05, memory_bytes=0)
    tag = deployed.image.rsplit(":", 1)[-1] if ":" in deployed.image else "latest"
    # A tag marked "clean" serves no error at all: its pods never export a 5xx series.
    error_rate = 0.0 if "clean" in tag else BASE_ERROR_RATE
    if "bad" in tag or tag in bad_tags:
        error_rate = max(error_rate, BAD_IMAGE_ERROR_RATE)
    search_down = deployed.annotations.get(f"{ANNOTATION}web-search") == "down"
    search_failing = search_down and deployed.env.get("DISABLE_WEB_SEARCH") != "true"
    if search_failing:
        error_rate = max(error_rate, WEB_SEARCH_ERROR_RATE)
    load = rps / (deployed.ready * CAPACITY_PER_REPLICA)
    latency = BASE_LATENCY_SECONDS * max(1.0, load**2)
    memory = 300 * 2**20 * deployed.ready
    if deployed.annotations.get(f"{ANNOTATION}leak") == "true" and deployed.rolled_out_at:
        age = max((now - deployed.rolled_out_at).total_seconds(), 0.0)
        memory += LEAK_BYTES_PER_SECOND * age * deployed.ready
        latency += LEAK_LATENCY_PER_MINUTE * age / 60
    return Behaviour(
        rps=rps,
        error_rate=error_rate,
        latency_seconds=latency,
        memory_bytes=memory,
        web_search_failing=search_failing,
    )


def pod_behaviour(
    deployed: Deployed,
    pod: Pod,
    *,
    serving: int,
    bad_tags: frozenset[str],
    now: datetime,
    leak_since: datetime | None = None,
) -> Behaviour:
    """One pod's condition: what its own container runs (during a rollout old and new pods
    differ), the Deployment's load shared by the ``serving`` ready pods, and a leak that grew
    since the pod started or since the leak began, whichever is later. ``rps`` and
    ``memory_bytes`` are this pod's share."""
    started = max((t for t in (pod.started_at, leak_since) if t is not None), default=None)
    replicas = max(serving, 1)
    view = Deployed(
        ready=replicas,
        desired=deployed.desired,
        image=pod.image,
        env=pod.env,
        annotations=deployed.annotations,
        rolled_out_at=started or deployed.rolled_out_at,
        pod_labels=deployed.pod_labels,
    )
    state = behaviour(view, bad_tags=bad_tags, now=now)
    return Behaviour(
        rps=state.rps / replicas,
        error_rate=state.error_rate,
        latency_seconds=state.latency_seconds,
        memory_bytes=state.memory_bytes / replicas,
        web_search_failing=state.web_search_failing,
    )


def _pod(pod: client.V1Pod) -> Pod:
    status = pod.status
    container = pod.spec.containers[0]
    ready = any(c.type == "Ready" and c.status == "True" for c in status.conditions or [])
    return Pod(
        name=pod.metadata.name,
        ready=ready,
        started_at=status.start_time or pod.metadata.creation_timestamp,
        restarts=sum(c.restart_count or 0 for c in status.container_statuses or []),
        image=container.image,
        env={e.name: e.value or "" for e in container.env or []},
    )


def read_deployed(
    apps: client.AppsV1Api, namespace: str, name: str, core: client.CoreV1Api | None = None
) -> Deployed:
    dep = apps.read_namespaced_deployment(name, namespace)
    container = dep.spec.template.spec.containers[0]
    template_annotations = dep.spec.template.metadata.annotations or {}
    restarted = template_annotations.get("kubectl.kubernetes.io/restartedAt")
    progressing = next((c for c in dep.status.conditions or [] if c.type == "Progressing"), None)
    rolled_out_at = (
        datetime.fromisoformat(restarted.replace("Z", "+00:00"))
        if restarted
        else (progressing.last_update_time if progressing else dep.metadata.creation_timestamp)
    )
    pods: tuple[Pod, ...] = ()
    if core is not None:
        selector = ",".join(f"{k}={v}" for k, v in (dep.spec.selector.match_labels or {}).items())
        listed = core.list_namespaced_pod(namespace, label_selector=selector).items
        # A terminating pod's process is on its way out: its series go with it.
        pods = tuple(_pod(p) for p in listed if p.metadata.deletion_timestamp is None)
    return Deployed(
        ready=dep.status.ready_replicas or 0,  # the API omits a count of zero
        desired=dep.spec.replicas or 0,
        image=container.image,
        env={e.name: e.value or "" for e in container.env or []},
        annotations=dict(dep.metadata.annotations or {}),
        rolled_out_at=rolled_out_at,
        pod_labels=dict(dep.spec.template.metadata.labels or {}),
        pods=pods,
    )


class Simulator:
    def __init__(
        self, *, namespace: str, deployment: str, bad_tags: frozenset[str], seed: int
    ) -> None:
        self.namespace, self.deployment, self.bad_tags = namespace, deployment, bad_tags
        self.random = random.Random(seed)
        self.registry = CollectorRegistry()
        labels = ["namespace", "deployment"]
        per_pod = [*labels, "pod"]
        self.requests = Counter(
            "luminamind_requests", "Requests served", [*per_pod, "status"], registry=self.registry
        )
        self.duration = Histogram(
            "luminamind_request_duration_seconds",
            "Request latency",
            per_pod,
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.memory = Gauge(
            "luminamind_memory_bytes", "Resident memory", per_pod, registry=self.registry
        )
        self.ready = Gauge(
            "luminamind_ready_replicas", "Ready replicas seen", labels, registry=self.registry
        )
        self.tool_errors = Counter(
            "luminamind_tool_errors",
            "Tool call failures",
            [*per_pod, "tool"],
            registry=self.registry,
        )
        self.serving: list[Behaviour] = []
        self.service_selects_pods = True
        self.leak_since: datetime | None = None
        self._processes: dict[str, int] = {}  # pod → restarts: one process per container run

    def probe(self) -> tuple[int, dict[str, str]]:
        """What one request through the Service gets now."""
        if not self.service_selects_pods:
            return 503, {"Retry-After": "120"}  # the maintenance backend's answer
        if not self.serving:
            return 503, {}  # no ready endpoint behind the Service
        state = self.random.choice(self.serving)
        return (500, {}) if self.random.random() < state.error_rate else (200, {})

    def _forget(self, pod: str) -> None:
        """A pod's process is gone (deleted, or its container restarted): so are its series."""
        ids = (self.namespace, self.deployment, pod)
        children: list[tuple[Counter | Gauge | Histogram, tuple[str, ...]]] = [
            (self.requests, (*ids, "200")),
            (self.requests, (*ids, "500")),
            (self.duration, ids),
            (self.memory, ids),
            (self.tool_errors, (*ids, "web_search")),
        ]
        for metric, values in children:
            with contextlib.suppress(KeyError):
                metric.remove(*values)

    def step(self, deployed: Deployed, *, seconds: float, now: datetime) -> None:
        leaking = deployed.annotations.get(f"{ANNOTATION}leak") == "true"
        self.leak_since = (self.leak_since or now) if leaking else None
        current = {pod.name: pod.restarts for pod in deployed.pods}
        for name, restarts in list(self._processes.items()):
            if current.get(name) != restarts:
                self._forget(name)
                del self._processes[name]
        self._processes.update(current)

        serving = [pod for pod in deployed.pods if pod.ready]
        states: list[Behaviour] = []
        for pod in deployed.pods:
            state = pod_behaviour(
                deployed,
                pod,
                serving=len(serving),
                bad_tags=self.bad_tags,
                now=now,
                leak_since=self.leak_since,
            )
            ids = (self.namespace, self.deployment, pod.name)
            self.memory.labels(*ids).set(state.memory_bytes)
            if not pod.ready:
                continue
            states.append(state)
            count = int(state.rps * seconds + self.random.random())
            for _ in range(count):
                failed = self.random.random() < state.error_rate
                # A series is born at its first sample: the 5xx one at the first error.
                self.requests.labels(*ids, "500" if failed else "200").inc()
                # Latency spread around the typical value: p95 lands near 1.3x of it.
                self.duration.labels(*ids).observe(
                    state.latency_seconds * self.random.uniform(0.6, 1.35)
                )
                if failed and state.web_search_failing:
                    self.tool_errors.labels(*ids, "web_search").inc()
        self.serving = states
        self.ready.labels(self.namespace, self.deployment).set(deployed.ready)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--deployment", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kubeconfig")
    parser.add_argument("--bad-tags", default="", help="comma-separated image tags that error")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between steps")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--service", default="luminamind", help="the Service in front of it")
    args = parser.parse_args(argv)
    apps = client.AppsV1Api(config.new_client_from_config(config_file=args.kubeconfig))
    sim = Simulator(
        namespace=args.namespace,
        deployment=args.deployment,
        bad_tags=frozenset(t for t in args.bad_tags.split(",") if t),
        seed=args.seed,
    )
    core = client.CoreV1Api(apps.api_client)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _handler(sim))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    last = time.monotonic()
    while not stop.wait(args.interval):
        now = time.monotonic()
        try:
            deployed = read_deployed(apps, args.namespace, args.deployment, core)
        except Exception as exc:
            print(f"luminamind-sim: cannot read the Deployment: {exc}", flush=True)
            continue
        sim.step(deployed, seconds=now - last, now=datetime.now(UTC))
        sim.service_selects_pods = _service_selects(core, args.namespace, args.service, deployed)
        last = now
    server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
