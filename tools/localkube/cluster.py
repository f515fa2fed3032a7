"""Start and stop a real control plane on loopback: etcd, kube-apiserver (RBAC on),
kube-controller-manager, kube-scheduler and kwok with fake Nodes.

Every component logs to ``<workdir>/logs/<name>.log``; ``state.json`` in the workdir lists the
process groups so another process (``make cluster-down``) can stop them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from localkube.build import ensure_built, kwok_stage_files
from localkube.certs import Pki, generate_pki
from localkube.processes import ManagedProcess, free_port, group_members, wait_until

FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
SERVICE_CIDR = "10.0.0.0/24"
# What watches the API server and acts on what it sees (restarted after an etcd restore).
CONTROLLERS = ("kube-controller-manager", "kube-scheduler", "kwok")


@dataclass
class LocalCluster:
    """A control plane owned by this object; ``start()`` then ``stop()``."""

    workdir: Path
    nodes: int = 1
    processes: list[ManagedProcess] = field(default_factory=list)
    api_port: int = 0
    pki: Pki | None = None

    @classmethod
    def in_tempdir(cls, *, nodes: int = 1) -> LocalCluster:
        return cls(workdir=Path(tempfile.mkdtemp(prefix="localkube-")), nodes=nodes)

    @property
    def logs_dir(self) -> Path:
        return self.workdir / "logs"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def pod_logs_file(self) -> Path:
        """What kwok serves as every container's log (`kubectl logs`): append lines to it."""
        return self.workdir / "pod-logs" / "containers.log"

    def log_to_pods(self, *lines: str) -> None:
        """Append lines to every container's log, in the CRI format kwok parses."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())
        with self.pod_logs_file.open("a") as out:
            out.writelines(f"{stamp} stdout F {line}\n" for line in lines)

    @property
    def bin_dir(self) -> Path:
        return ensure_built()

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        bins = ensure_built()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pki = generate_pki(self.workdir / "pki")
        try:
            self._start_etcd(bins)
            self._start_apiserver(bins)
            self._write_kubeconfig()
            self._start_controllers(bins)
            self._register_nodes()
            self._wait_for_controllers()
        except BaseException:
            self.stop()
            raise
        self._write_state()

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        stray = self.stray_processes()
        if stray:
            raise RuntimeError(f"processes survived teardown: {stray}")

    def stray_processes(self) -> dict[str, list[int]]:
        return {
            p.name: members
            for p in self.processes
            if p.popen is not None and (members := group_members(p.pid))
        }

    # ---------------------------------------------------------------- faults

    def component(self, name: str) -> ManagedProcess:
        return next(p for p in self.processes if p.name == name)

    def kill_component(self, name: str) -> None:
        """SIGKILL one component ("etcd", "kube-apiserver", ...): a crash, not a shutdown."""
        self.component(name).kill()

    def start_component(self, name: str, *, timeout: float = 90) -> None:
        """Start a killed component again with the same command line: the API server on the
        same port and etcd, etcd on the same ports and data directory. Returns once it is
        healthy and the API server answers /readyz again (it reconnects to etcd by itself)."""
        old = self.component(name)
        if old.alive():
            raise RuntimeError(f"{name} is still running; kill it first")
        proc = old.again()
        proc.start()
        self.processes[self.processes.index(old)] = proc
        if name == "etcd":
            self._wait_healthy(proc, lambda: _http_ok(f"{self.etcd_url}/health"), timeout=timeout)
        else:
            self._wait_healthy(proc, lambda: True, timeout=timeout)
        apiserver = self.component("kube-apiserver")
        if apiserver.alive():  # not while it is down on purpose (restore_etcd)
            self._wait_healthy(apiserver, lambda: self._api_ok("/readyz"), timeout=timeout)
        self._write_state()

    def restart_component(self, name: str, *, timeout: float = 90) -> None:
        self.kill_component(name)
        self.start_component(name, timeout=timeout)

    @property
    def etcd_data_dir(self) -> Path:
        return self.workdir / "etcd"

    def copy_etcd(self, destination: Path, *, timeout: float = 90) -> None:
        """A backup of the store as a restore would bring it back: etcd's data directory,
        copied while etcd is stopped (killed, copied, started again on the same directory)."""
        self.kill_component("etcd")
        shutil.copytree(self.etcd_data_dir, destination)
        self.start_component("etcd", timeout=timeout)

    def restore_etcd(
        self, backup: Path, *, bump_revision: bool = True, timeout: float = 90
    ) -> None:
        """Roll the store back to `backup` (from `copy_etcd`) as a restore should be done: the
        API server stopped; etcd's data replaced while it is stopped; the revision moved past
        every resourceVersion a client has seen and compacted there (what `etcdutl snapshot
        restore --bump-revision --mark-compacted` does), so that every watch from before
        fails with 410 Gone and lists again instead of waiting for versions the restored
        store will reuse for other writes; the API server and the controllers (stopped
        before it) started again. Other clients of the API server (operators) are not
        restarted: their watches must list again by themselves. `bump_revision=False` is
        the naive restore (the revision goes back; watches from before are not told)."""
        # The controllers go first: one left running would act on its cache of the lost
        # state as soon as the API server answers (a Deployment controller that remembers a
        # newer ReplicaSet revision writes a revision that never happened).
        for name in (*CONTROLLERS, "kube-apiserver"):
            self.kill_component(name)
        seen = self._etcd_revision()  # nothing writes now: the newest revision any client saw
        self.kill_component("etcd")
        shutil.rmtree(self.etcd_data_dir)
        shutil.copytree(backup, self.etcd_data_dir)
        self.start_component("etcd", timeout=timeout)
        if bump_revision:
            self._bump_and_compact(past=seen)
        for name in ("kube-apiserver", *CONTROLLERS):
            self.start_component(name, timeout=timeout)

    def _etcd(self, call: str, body: dict[str, Any]) -> Any:
        """etcd's v3 API through its JSON gateway on the client URL."""
        request = urllib.request.Request(
            f"{self.etcd_url}/v3/{call}", data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.loads(resp.read())

    def _etcd_revision(self) -> int:
        key = base64.b64encode(b"/localkube/revision").decode()
        return int(self._etcd("kv/range", {"key": key})["header"]["revision"])

    def _bump_and_compact(self, *, past: int) -> None:
        # One write is one revision: write a scratch key until the store is past `past`.
        key = base64.b64encode(b"/localkube/revision").decode()
        revision = self._etcd_revision()
        while revision <= past:
            revision = int(self._etcd("kv/put", {"key": key, "value": key})["header"]["revision"])
        self._etcd("kv/compaction", {"revision": revision})

    # ---------------------------------------------------------------- components

    def _spawn(self, name: str, argv: list[str]) -> ManagedProcess:
        proc = ManagedProcess(name=name, argv=argv, log_path=self.logs_dir / f"{name}.log")
        proc.start()
        self.processes.append(proc)
        return proc

    def _wait_healthy(self, proc: ManagedProcess, check: Any, *, timeout: float) -> None:
        def healthy() -> bool:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited; log tail:\n{proc.log_tail()}")
            return bool(check())

        try:
            wait_until(healthy, timeout=timeout, what=f"{proc.name} to become healthy")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; log {proc.log_path}:\n{proc.log_tail()}") from exc

    def _start_etcd(self, bins: Path) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        proc = self._spawn(
            "etcd",
            [
                str(bins / "etcd"),
                "--name=localkube",
                f"--data-dir={self.etcd_data_dir}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=localkube=http://127.0.0.1:{peer}",
                "--listen-metrics-urls=",
                # A throwaway test store: durability is not worth an fsync per write.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        self._wait_healthy(proc, lambda: _http_ok(f"{self.etcd_url}/health"), timeout=30)

    def _start_apiserver(self, bins: Path) -> None:
        assert self.pki is not None
        self.api_port = free_port()
        pki = self.pki
        proc = self._spawn(
            "kube-apiserver",
            [
                str(bins / "kube-apiserver"),
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.api_port}",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}",
                f"--service-account-key-file={pki.sa_public_key}",
                f"--service-account-signing-key-file={pki.sa_private_key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--api-audiences=https://kubernetes.default.svc.cluster.local",
                "--authorization-mode=RBAC",
                # kwok's nodes answer on 127.0.0.1 (their Hostname address resolves nowhere):
                # `kubectl logs` reaches kwok's kubelet API there.
                "--kubelet-preferred-address-types=InternalIP",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                "--profiling=false",
                "--v=1",
            ],
        )
        self._wait_healthy(proc, lambda: self._api_ok("/readyz"), timeout=90)

    def _start_controllers(self, bins: Path) -> None:
        assert self.pki is not None
        kubeconfig = str(self.kubeconfig)
        self._spawn(
            "kube-controller-manager",
            [
                str(bins / "kube-controller-manager"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                f"--service-account-private-key-file={self.pki.sa_private_key}",
                f"--root-ca-file={self.pki.ca_cert}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--use-service-account-credentials=false",
                "--controllers=*",
                # The HPA controller's own loop, compressed like everything else here.
                "--horizontal-pod-autoscaler-sync-period=2s",
                "--v=1",
                *_controller_rate_flags(),
            ],
        )
        self._spawn(
            "kube-scheduler",
            [
                str(bins / "kube-scheduler"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                "--v=1",
            ],
        )
        stages = self.workdir / "kwok-stages.yaml"
        stages.write_text(
            "\n---\n".join([*(p.read_text() for p in kwok_stage_files()), self._kwok_logs()])
        )
        kubelet_port = free_port()
        self._spawn(
            "kwok",
            [
                str(bins / "kwok"),
                f"--kubeconfig={kubeconfig}",
                f"--config={stages}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
                # kwok's kubelet API (logs), over TLS as the API server expects a kubelet.
                f"--server-address=127.0.0.1:{kubelet_port}",
                f"--node-port={kubelet_port}",
                f"--tls-cert-file={self.pki.serving_cert}",
                f"--tls-private-key-file={self.pki.serving_key}",
                "--cidr=10.244.0.0/16",
                "--node-ip=127.0.0.1",
            ],
        )

    def _kwok_logs(self) -> str:
        """kwok's ClusterLogs configuration: every container of every pod logs
        `pod_logs_file`, so `kubectl logs` (and what reads logs through the API) works."""
        self.pod_logs_file.parent.mkdir(parents=True, exist_ok=True)
        self.pod_logs_file.touch()
        return yaml.safe_dump(
            {
                "kind": "ClusterLogs",
                "apiVersion": "kwok.x-k8s.io/v1alpha1",
                "metadata": {"name": "every-container"},
                "spec": {
                    "selector": {},
                    "logs": [{"logsFile": str(self.pod_logs_file), "follow": False}],
                },
            }
        )

    def _register_nodes(self) -> None:
        for index in range(self.nodes):
            name = f"kwok-node-{index}"
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {FAKE_NODE_ANNOTATION: "fake"},
                    "labels": {"type": "kwok", "kubernetes.io/hostname": name},
                },
                "status": {
                    "capacity": {"cpu": "32", "memory": "256Gi", "pods": "500"},
                    "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "500"},
                },
            }
            self.api("POST", "/api/v1/nodes", node)
        for index in range(self.nodes):
            wait_until(
                lambda i=index: _node_ready(self.api("GET", f"/api/v1/nodes/kwok-node-{i}")),
                timeout=60,
                what=f"kwok-node-{index} to become Ready (kwok log: {self.logs_dir / 'kwok.log'})",
            )

    def _wait_for_controllers(self) -> None:
        # The service-account controller creating "default" proves the controller-manager runs.
        wait_until(
            lambda: self.api("GET", "/api/v1/namespaces/default/serviceaccounts/default"),
            timeout=60,
            what="the controller-manager to create the default ServiceAccount",
        )

    # ---------------------------------------------------------------- API access

    def _ssl_context(self) -> ssl.SSLContext:
        assert self.pki is not None
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        context.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return context

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """A minimal admin request to the API server (the harness needs no client library)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.server}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        with urllib.request.urlopen(request, context=self._ssl_context(), timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def _api_ok(self, path: str) -> bool:
        request = urllib.request.Request(f"{self.server}{path}")
        try:
            with urllib.request.urlopen(request, context=self._ssl_context(), timeout=5) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def _write_kubeconfig(self) -> None:
        assert self.pki is not None
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "localkube",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority": str(self.pki.ca_cert),
                    },
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "client-certificate": str(self.pki.admin_cert),
                        "client-key": str(self.pki.admin_key),
                    },
                }
            ],
            "contexts": [
                {"name": "localkube", "context": {"cluster": "localkube", "user": "admin"}}
            ],
            "current-context": "localkube",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))

    def _write_state(self) -> None:
        state = {
            "kubeconfig": str(self.kubeconfig),
            "server": self.server,
            "groups": {p.name: p.pid for p in self.processes},
        }
        (self.workdir / "state.json").write_text(json.dumps(state, indent=2))


def stop_from_state(workdir: Path, *, timeout: float = 15.0) -> list[str]:
    """Stop a cluster started by another process, from its ``state.json``."""
    state_file = workdir / "state.json"
    if not state_file.exists():
        return []
    groups: dict[str, int] = json.loads(state_file.read_text())["groups"]
    for pgid in reversed(list(groups.values())):
        _killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(group_members(g) for g in groups.values()):
        time.sleep(0.2)
    for pgid in groups.values():
        _killpg(pgid, signal.SIGKILL)
    state_file.unlink()
    return list(groups)


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _node_ready(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def remove_workdir(workdir: Path) -> None:
    shutil.rmtree(workdir, ignore_errors=True)


def _controller_rate_flags() -> list[str]:
    """LOCALKUBE_CONTROLLER_QPS (the benchmarks set it): the controller-manager's client
    rate. Its default (20/s) syncs about 5 Deployments a second, so 1,000 rollouts take over
    3 minutes of any run that starts them."""
    qps = os.environ.get("LOCALKUBE_CONTROLLER_QPS")
    if not qps:
        return []
    return [f"--kube-api-qps={int(qps)}", f"--kube-api-burst={2 * int(qps)}"]
