"""`make demo`: the whole loop on this machine, in about two minutes.

A local control plane, Prometheus with the shipped alert rules, Alertmanager routing to the
bridge, the simulated LuminaMind service, and the operator. A good version ships, then a bad
one; the demo prints the Incident's timeline live as it is detected, classified, rolled back,
verified and resolved, then leaves everything running (`make demo-down` stops it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from localkube.build import cache_root, ensure_built
from localkube.cluster import LocalCluster, remove_workdir, stop_from_state
from localkube.monitoring import Alertmanager, Prometheus
from localkube.processes import ManagedProcess, free_port, wait_until
from localkube.rules import compressed_rules_file

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "luminamind"
TERMINAL = {"Resolved", "Escalated", "Failed"}

# The simulated LuminaMind service, as the demo and the end-to-end tests deploy it.
SERVICE = "luminamind"
GOOD_IMAGE = "registry.luminamind.local/luminamind:1.4.2"
BAD_IMAGE = "registry.luminamind.local/luminamind:1.5.0-bad"
MAINTENANCE_IMAGE = "registry.luminamind.local/maintenance-page:1"
REPLICAS = 3
POLICY = ROOT / "examples" / "policies" / "luminamind-demo.yaml"
SIMULATOR = ROOT / "examples" / "simulated_service" / "luminamind_sim.py"
RULES = ROOT / "manifests" / "prometheus-rules.yaml"


def luminamind_manifests(namespace: str, *, replicas: int = REPLICAS) -> list[dict[str, Any]]:
    """The service's Deployment, its maintenance backend and the Service in front of them."""

    def deployment(name: str, image: str, count: int) -> dict[str, Any]:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
            "spec": {
                "replicas": count,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": image}]},
                },
            },
        }

    return [
        deployment(SERVICE, GOOD_IMAGE, replicas),
        deployment(f"{SERVICE}-maintenance", MAINTENANCE_IMAGE, 1),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE, "namespace": namespace},
            "spec": {"selector": {"app": SERVICE}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    ]


def luminamind_list(namespace: str, *, replicas: int = REPLICAS) -> str:
    """The manifests and the demo policy, as one `kubectl apply -f -` input (a v1 List)."""
    policy = yaml.safe_load(POLICY.read_text())
    policy["metadata"]["namespace"] = namespace
    items = [*luminamind_manifests(namespace, replicas=replicas), policy]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def simulator(
    namespace: str,
    *,
    port: int,
    kubeconfig: Path,
    log_path: Path,
    env: dict[str, str] | None = None,
) -> ManagedProcess:
    """The simulated service's process (not started) for the Deployment in ``namespace``."""
    return ManagedProcess(
        name="luminamind-sim",
        argv=[
            sys.executable,
            str(SIMULATOR),
            "--namespace",
            namespace,
            "--deployment",
            SERVICE,
            "--port",
            str(port),
            "--kubeconfig",
            str(kubeconfig),
        ],
        log_path=log_path,
        env=env,
        cwd=ROOT,
    )


def error_rate_query(namespace: str, window: str = "15s") -> str:
    """The service's 5xx ratio in ``namespace`` as a client of Prometheus measures it: 0 while
    requests are served and none failed (no 5xx series yet is no error, not no data), no
    result only when no request is counted at all."""
    requests = f'luminamind_requests_total{{namespace="{namespace}",deployment="{SERVICE}"'
    return (
        f'(sum(rate({requests},status=~"5.."}}[{window}])) or vector(0))'
        f" / sum(rate({requests}}}[{window}]))"
    )


def measured(prometheus: Prometheus, promql: str) -> float | None:
    """The query's one value, or None when Prometheus has no sample (never a default)."""
    result = prometheus.query(promql)
    if not result:
        return None
    value = float(result[0]["value"][1])
    return None if math.isnan(value) else value


def wait_healthy(prometheus: Prometheus, namespace: str, *, timeout: float = 60) -> float:
    """Until Prometheus measures the service's traffic with an error rate under the guide's
    0.5% (its recovery bar); answers that error rate."""
    seen: list[float] = []

    def healthy() -> bool:
        rate = measured(prometheus, error_rate_query(namespace))
        if rate is None:
            return False
        seen.append(rate)
        return rate < 0.005

    try:
        wait_until(healthy, timeout=timeout, what=f"healthy traffic from luminamind in {namespace}")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; error rates measured: {seen[-5:] or 'none'}") from exc
    return seen[-1]


def _say(text: str) -> None:
    print(f"demo | {text}", flush=True)


def _workdir() -> Path:
    return Path(os.environ.get("MITIGATOR_DEMO_DIR", cache_root() / "demo"))


class Demo:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.cluster = LocalCluster(workdir=workdir / "cluster")
        self.extra: list[ManagedProcess] = []
        self.env: dict[str, str] = {}

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            ["kubectl", *args],
            input=stdin,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def start_world(self) -> None:
        bins = ensure_built()
        self.cluster.start()
        self.env = {
            **os.environ,
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "PATH": f"{bins}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        _say(f"control plane up at {self.cluster.server} (logs: {self.cluster.logs_dir})")
        self.bridge_port, self.token = free_port(), secrets.token_urlsafe(24)
        alertmanager = Alertmanager(
            workdir=self.workdir / "alertmanager",
            webhook_url=f"http://127.0.0.1:{self.bridge_port}/api/v1/alerts",
            bearer_token=self.token,
            group_wait="1s",
            group_interval="5s",
            repeat_interval="1m",
        )
        alertmanager.start()
        rules = self.workdir / "prometheus-rules.compressed.yaml"
        (self.workdir).mkdir(parents=True, exist_ok=True)
        prometheus = Prometheus(
            workdir=self.workdir / "prometheus",
            # The shipped rules, durations compressed so the demo takes a minute, not ten.
            rule_files=[compressed_rules_file(RULES, rules)],
            alertmanager_url=alertmanager.url,
        )
        prometheus.start()
        self.prometheus = prometheus
        self.extra += [p for p in (alertmanager.process, prometheus.process) if p]
        _say(
            f"Prometheus {prometheus.url} (rules: manifests/prometheus-rules.yaml), "
            f"Alertmanager {alertmanager.url} -> bridge :{self.bridge_port}"
        )

    def deploy_service(self) -> None:
        self.kubectl("apply", "--server-side", "-k", str(ROOT / "crds"))
        self.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        self.kubectl("create", "namespace", NAMESPACE)
        self.kubectl("apply", "-f", "-", stdin=luminamind_list(NAMESPACE))
        self.kubectl("rollout", "status", "-n", NAMESPACE, f"deployment/{SERVICE}", "--timeout=60s")
        _say(
            f"deployed luminamind {GOOD_IMAGE.rsplit(':', 1)[1]} ({REPLICAS} replicas) "
            "and policy luminamind-demo"
        )
        sim_port = free_port()
        sim = simulator(
            NAMESPACE,
            port=sim_port,
            kubeconfig=self.cluster.kubeconfig,
            log_path=self.workdir / "logs" / "luminamind-sim.log",
            env=self.env,
        )
        sim.start()
        self.extra.append(sim)
        self.prometheus.add_targets(SERVICE, [f"127.0.0.1:{sim_port}"], {"job": SERVICE})
        self._spawn(
            "mitigator",
            [sys.executable, "-m", "mitigator", "run", "--standalone", "--namespace", NAMESPACE],
            env={
                "MITIGATOR_PROMETHEUS_URL": self.prometheus.url,
                "MITIGATOR_BRIDGE_PORT": str(self.bridge_port),
                "MITIGATOR_BRIDGE_TOKEN": self.token,
                "MITIGATOR_TICK_SECONDS": "1",
            },
        )
        # A healthy baseline in Prometheus before anything goes wrong: traffic measured, its
        # error rate under the guide's bar (no fixed pause: the condition, with a timeout).
        rate = wait_healthy(self.prometheus, NAMESPACE)
        _say(
            f"the simulated service is serving traffic (error rate {rate:.2%}); "
            "Prometheus scrapes it every second"
        )

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        process = ManagedProcess(
            name=name,
            argv=argv,
            log_path=self.workdir / "logs" / f"{name}.log",
            env={**self.env, **(env or {})},
            cwd=ROOT,
        )
        process.start()
        self.extra.append(process)

    def ship_bad_version(self) -> None:
        self.kubectl("set", "image", "-n", NAMESPACE, f"deployment/{SERVICE}", f"app={BAD_IMAGE}")
        _say(f"shipped {BAD_IMAGE.rsplit(':', 1)[1]}: 30% of requests now fail")

    def follow_incident(self, *, timeout: float = 300) -> dict[str, Any] | None:
        printed: set[tuple[str, str]] = set()
        deadline = time.monotonic() + timeout
        incident: dict[str, Any] | None = None
        _say("waiting for HighErrorRate to fire and reach the bridge ...")
        while time.monotonic() < deadline:
            items = json.loads(self.kubectl("get", "incidents", "-n", NAMESPACE, "-o", "json"))[
                "items"
            ]
            for incident in items:
                for entry in (incident.get("status") or {}).get("timeline") or []:
                    key = (entry["at"], entry["event"] + entry.get("message", ""))
                    if key not in printed:
                        printed.add(key)
                        _say(
                            f"{entry['at'][11:19]}  {entry['event']:<18} {entry.get('message', '')}"
                        )
                if (incident.get("status") or {}).get("phase") in TERMINAL:
                    return incident
            time.sleep(1)
        return incident

    def save_state(self) -> None:
        state = {
            "kubeconfig": str(self.cluster.kubeconfig),
            "cluster": str(self.cluster.workdir),
            "groups": {p.name: p.pid for p in self.extra},
        }
        (self.workdir / "demo.json").write_text(json.dumps(state, indent=2))


def down(workdir: Path) -> None:
    state_file = workdir / "demo.json"
    if state_file.exists():
        state = json.loads(state_file.read_text())
        for name, pgid in state["groups"].items():
            try:
                os.killpg(pgid, 15)
            except ProcessLookupError:
                continue
            _say(f"stopped {name}")
        stop_from_state(Path(state["cluster"]))
        state_file.unlink()
        _say("stopped the control plane")
    else:
        stop_from_state(workdir / "cluster")
        _say("no demo running")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--down", action="store_true", help="stop everything the demo started")
    args = parser.parse_args(argv)
    workdir = _workdir()
    if args.down:
        down(workdir)
        return 0
    down(workdir)
    remove_workdir(workdir)
    demo = Demo(workdir)
    try:
        demo.start_world()
        demo.deploy_service()
    finally:
        demo.save_state()
    demo.ship_bad_version()
    incident = demo.follow_incident()
    image = demo.kubectl(
        "get",
        "deployment",
        "luminamind",
        "-n",
        NAMESPACE,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    )
    phase = (incident or {}).get("status", {}).get("phase", "no incident")
    _say(f"incident phase: {phase}; luminamind now runs {image}")
    bins = ensure_built()
    print(
        "\nEverything is still running. Try:\n"
        f'  export PATH="{bins}:$PATH"\n'
        f"  export KUBECONFIG={demo.cluster.kubeconfig}\n"
        f"  kubectl get inc -n {NAMESPACE}\n"
        f"  kubectl get inc -n {NAMESPACE} -o yaml   # the full record\n"
        f"  kubectl rollout history -n {NAMESPACE} deployment/luminamind\n"
        f"  kubectl get events -n {NAMESPACE} --sort-by=.lastTimestamp\n"
        f"Logs: {workdir / 'logs'}  Stop it all: make demo-down",
        flush=True,
    )
    return 0 if phase == "Resolved" else 1


if __name__ == "__main__":
    raise SystemExit(main())
