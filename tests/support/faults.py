"""What the fault tier drives: the operator as a process that can be killed at a named step
(``mitigator.failpoints``) and started again, counts of the writes a target received, and a
TCP proxy that takes Prometheus away or makes it slow without touching the session's own."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, watch

from localkube.monitoring import Prometheus
from localkube.processes import wait_until
from tests.support.world import start_operator

KILLED = 137  # what failpoints.crash_if_armed exits with, as a SIGKILL would


@dataclass
class OperatorProcess:
    """`mitigator run` for one namespace, started and killed as often as a test needs; every
    run appends to the same log."""

    kubeconfig: Path
    prometheus: Prometheus
    namespace: str
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    runs: int = 0

    def start(self, *, failpoint: str | None = None) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        extra = dict(self.env)
        if failpoint:
            extra["MITIGATOR_FAILPOINTS"] = failpoint
        self.process = start_operator(
            self.kubeconfig, self.prometheus, self.namespace, self.log, **extra
        )
        self.runs += 1

    def wait_killed_at(self, failpoint: str, *, timeout: float = 90) -> float:
        """Run armed with `failpoint` until it kills the process; the seconds it took."""
        started = time.monotonic()
        self.start(failpoint=failpoint)
        assert self.process is not None
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"the operator never reached {failpoint} in {timeout:.0f}s; log tail:\n"
                + self.tail()
            ) from None
        assert code == KILLED, f"exit {code} instead of dying at {failpoint}:\n{self.tail()}"
        return time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL, as the node or the OOM killer would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def tracebacks(self) -> list[str]:
        """Every traceback the operator logged (an unhandled exception anywhere)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [line for line in text.splitlines() if "Traceback (most recent call last)" in line]


class TargetWrites:
    """Every version of one Deployment, from a watch started before the operator acts (and
    resumed from the last version seen if the watch breaks): what a test counts writes on.
    A second application of the same step shows as one more change of the template (a
    rollback) or of the replica count (a scale), however the operator's records look."""

    def __init__(self, apps: client.AppsV1Api, namespace: str, name: str) -> None:
        self.apps, self.namespace, self.name = apps, namespace, name
        self.versions: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TargetWrites:
        self._thread.start()
        # The version the watch starts from is the state before anything the test does next:
        # without it, a loaded machine could start the watch after the operator's first write
        # and count one change too few.
        wait_until(lambda: self.versions, timeout=30, what=f"a watch on {self.name}")
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        resource_version = ""
        while not self._stop.is_set():
            try:
                stream = watch.Watch().stream(
                    self.apps.list_namespaced_deployment,
                    self.namespace,
                    field_selector=f"metadata.name={self.name}",
                    resource_version=resource_version or None,
                    timeout_seconds=2,
                )
                for event in stream:
                    obj = self.apps.api_client.sanitize_for_serialization(event["object"])
                    resource_version = obj["metadata"]["resourceVersion"]
                    self.versions.append(obj)
                    if self._stop.is_set():
                        return
            except Exception:
                # The API server went away or the version expired: look again shortly.
                resource_version = ""
                self._stop.wait(0.5)

    def changes(self, projection: Callable[[dict[str, Any]], Any]) -> list[Any]:
        """The successive distinct values of `projection` over the versions seen."""
        values: list[Any] = []
        for version in self.versions:
            value = projection(version)
            if not values or values[-1] != value:
                values.append(value)
        return values

    def templates(self) -> list[str]:
        return self.changes(lambda d: json.dumps(d["spec"]["template"], sort_keys=True))

    def replicas(self) -> list[int]:
        return self.changes(lambda d: int(d["spec"]["replicas"]))


def revision(apps: client.AppsV1Api, namespace: str, name: str) -> int:
    dep = apps.read_namespaced_deployment(name, namespace)
    return int(dep.metadata.annotations["deployment.kubernetes.io/revision"])


class FlakyProxy:
    """A TCP proxy in front of a real server (here Prometheus) with three modes: ``up``
    (forwards), ``down`` (refuses connections, as a dead server does) and ``slow`` (accepts
    and answers nothing for `delay` seconds, longer than any client timeout)."""

    def __init__(self, upstream_port: int, *, delay: float = 30.0) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.mode = "up"
        self.port = 0
        self._listener: socket.socket | None = None
        # While down: the port bound but not listening (connections refused), so that no other
        # process (the suite runs beside the fault tier) can take it before the proxy is back.
        self._held: socket.socket | None = None
        self._stop = threading.Event()
        # Connections open now: a client's kept-alive connection must not outlive a fault.
        self._live: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._open()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _open(self) -> None:
        listener = _port_socket()
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        if self._held is not None:
            self._held.close()
            self._held = None
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def set(self, mode: str) -> None:
        assert mode in ("up", "down", "slow"), mode
        if mode != "up":
            self._cut()
        if mode == "down" and self._listener is not None:
            held = _port_socket()
            held.bind(("127.0.0.1", self.port))  # never listens: a SYN to it is refused
            self._held = held
            listener, self._listener = self._listener, None
            # shutdown wakes the thread blocked in accept(); close alone would not (Linux).
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()  # connection refused from now on
        elif mode != "down" and self._listener is None:
            self._open()
        self.mode = mode

    def _cut(self) -> None:
        with self._lock:
            live, self._live = list(self._live), set()
        for conn in live:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self._cut()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        if self._held is not None:
            self._held.close()
            self._held = None

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self._live.add(conn)
        with contextlib.closing(conn):
            if self.mode == "slow":
                self._stop.wait(self.delay)
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
            except OSError:
                return
            with contextlib.closing(upstream):
                pump = threading.Thread(target=_pipe, args=(upstream, conn), daemon=True)
                pump.start()
                _pipe(conn, upstream)
                pump.join(timeout=10)


def _port_socket() -> socket.socket:
    """A TCP socket that may share its port with the proxy's other sockets (SO_REUSEPORT, same
    user): the listener and the socket that holds the port while the proxy is down."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return sock


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def incident_names(items: list[dict[str, Any]]) -> list[str]:
    return sorted(item["metadata"]["name"] for item in items)
