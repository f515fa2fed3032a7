"""Build the control plane from one Go module into one multi-call binary, cached by version.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok are linked
into a single ``localkube`` binary (see go/main.go), so the packages they share compile once.
Each command is a symlink named after it, which the binary dispatches on, so callers run
``bin/etcd`` or ``bin/kubectl`` as if they were separate binaries.

Only the first build pays: it lands in ``$MITIGATOR_CACHE/bin/<key>/`` (default
``~/.cache/mitigator``), where the key hashes the pinned versions and the module's go.mod,
go.sum and sources, so a version bump builds afresh and an unchanged tree reuses what is there.
While it builds it prints a line at least every 20 s: the step, the time taken, the packages
compiled and the time the same step took last time on this machine.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO

from localkube.versions import ETCD_VERSION, KUBERNETES_VERSION, KWOK_VERSION

GO_MODULE = Path(__file__).resolve().parent / "go"
BINARY = "localkube"
COMMANDS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
)
# The first estimate, for empty Go caches on a 2-core machine at load 2-4: the download took
# 11 s, the compile 4m55s (9m07s of CPU time); longer on a busy machine, which is why
# progress lines show the load. Afterwards the last measured
# time on this machine (build-times.json) is the estimate.
FIRST_ESTIMATE_SECONDS = {"download": 20.0, "compile": 300.0}
PROGRESS_EVERY_SECONDS = 20.0
# kwok's own stage files (shipped in its module): node initialise + heartbeat, pod lifecycle.
KWOK_STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat/node-heartbeat.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)


class BuildError(RuntimeError):
    """A build step failed; the message names the step and carries the Go output."""


def _ldflags() -> str:
    major, minor, _ = KUBERNETES_VERSION.split(".")
    flags = ["-s", "-w"]
    # Without these the binaries report v0.0.0-master, and version-aware clients misbehave.
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion=v{KUBERNETES_VERSION}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return " ".join(flags)


def cache_root() -> Path:
    return Path(os.environ.get("MITIGATOR_CACHE", Path.home() / ".cache" / "mitigator"))


def build_key() -> str:
    digest = hashlib.sha256(f"{KUBERNETES_VERSION}/{ETCD_VERSION}/{KWOK_VERSION}".encode())
    for path in sorted(GO_MODULE.glob("go.*")) + sorted(GO_MODULE.glob("*.go")):
        digest.update(path.read_bytes())
    versions = f"k8s-{KUBERNETES_VERSION}-etcd-{ETCD_VERSION}-kwok-{KWOK_VERSION}"
    return f"{versions}-{digest.hexdigest()[:12]}"


def bin_dir() -> Path:
    return cache_root() / "bin" / build_key()


def _complete(out: Path) -> bool:
    return (
        all((out / name).exists() for name in (BINARY, *COMMANDS))
        and (out / "kwok-stages").is_dir()
    )


def ensure_built(*, log: bool = True) -> Path:
    """Return the folder holding the binary and one symlink per command, building if needed."""
    out = bin_dir()
    if _complete(out):
        return out
    out.mkdir(parents=True, exist_ok=True)
    # Parallel test workers may all ask at once: one builds, the others wait for it.
    with (out / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _complete(out):
            _build(out, log=log)
    return out


_GO_ENV = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}


def _build(out: Path, *, log: bool) -> None:
    if not (out / BINARY).exists():
        times = _Times(cache_root() / "stamps" / "build-times.json")
        # `go list -deps` downloads the modules the build needs (and only those) and counts
        # the packages, so the compile step can say how far it is.
        listing = _run_step(
            "download",
            "downloading the Go modules of kubernetes, etcd and kwok",
            ["go", "list", "-deps", "."],
            times=times,
            log=log,
        )
        total = len(listing.splitlines())
        # Build beside the cache and move in only a complete binary: an interrupted build
        # must never leave a truncated file that a later run would take as built.
        partial = out / f".partial-{BINARY}"
        partial.unlink(missing_ok=True)
        _run_step(
            "compile",
            f"compiling {', '.join(COMMANDS)} into one binary ({total} packages)",
            [
                "go",
                "build",
                "-v",
                "-trimpath",
                # -w drops the debug info at link time anyway; not making it at all saves a
                # sixth of the compile's CPU time (cold: 590 s instead of 715 s).
                "-gcflags=all=-dwarf=false",
                f"-ldflags={_ldflags()}",
                "-o",
                str(partial),
                ".",
            ],
            times=times,
            log=log,
            packages=total,
        )
        partial.rename(out / BINARY)
    for name in COMMANDS:
        link = out / name
        if not link.exists():
            link.unlink(missing_ok=True)  # a dangling link from an interrupted run
            link.symlink_to(BINARY)
    _copy_kwok_stages(out / "kwok-stages")


class _Times:
    """How long each step took last time on this machine: the expected total for the next."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.seen: dict[str, float] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.seen = {}

    def expected(self, step: str) -> tuple[float, str]:
        if step in self.seen:
            return self.seen[step], "as last time on this machine"
        return FIRST_ESTIMATE_SECONDS[step], "on a quiet 2-core machine (a first estimate)"

    def record(self, step: str, seconds: float) -> None:
        self.seen[step] = round(seconds)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.seen))


def _run_step(
    step: str, what: str, cmd: list[str], *, times: _Times, log: bool, packages: int = 0
) -> str:
    """Run one go command, printing progress; return its stdout or raise BuildError."""
    expected, basis = times.expected(step)
    say = _printer(log)
    say(f"localkube: {what}: about {_minutes(expected)} {basis}")
    started, cpu_before = time.monotonic(), _children_cpu_seconds()
    proc = subprocess.Popen(
        cmd,
        cwd=GO_MODULE,
        env=_GO_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout: list[str] = []
    stderr: deque[str] = deque(maxlen=400)
    compiled = [0]
    readers = [
        threading.Thread(target=_drain, args=(proc.stdout, stdout.append), daemon=True),
        threading.Thread(target=_drain_counting, args=(proc.stderr, stderr, compiled), daemon=True),
    ]
    for reader in readers:
        reader.start()
    while True:
        try:
            proc.wait(timeout=PROGRESS_EVERY_SECONDS)
            break
        except subprocess.TimeoutExpired:
            done = f", {compiled[0]} of up to {packages} packages compiled" if packages else ""
            load = os.getloadavg()[0]
            say(
                f"localkube: ... {step}: {_minutes(time.monotonic() - started)} so far{done}, "
                f"expected about {_minutes(expected)} in all (load {load:.1f} on "
                f"{os.cpu_count()} cores)"
            )
    for reader in readers:
        reader.join()
    took = time.monotonic() - started
    if proc.returncode != 0:
        raise BuildError(
            f"{what} failed (exit {proc.returncode}) in {GO_MODULE}: {' '.join(cmd)}\n"
            + "".join(stderr)[-8000:]
        )
    times.record(step, took)
    # CPU time says what the wall time would be on an idle machine: on a busy one they differ.
    cpu = _children_cpu_seconds() - cpu_before
    say(f"localkube: {step} done in {_minutes(took)} (CPU time {_minutes(cpu)})")
    return "".join(stdout)


def _drain(stream: IO[str] | None, sink: Callable[[str], None]) -> None:
    for line in stream or ():
        sink(line)


def _drain_counting(stream: IO[str] | None, tail: deque[str], compiled: list[int]) -> None:
    # `go build -v` names each package as it compiles it: one import path per line.
    for line in stream or ():
        if line.strip() and " " not in line.strip() and not line.startswith("#"):
            compiled[0] += 1
        tail.append(line)


def _printer(log: bool) -> Callable[[str], None]:
    def say(message: str) -> None:
        if log:
            print(message, file=sys.stderr, flush=True)

    return say


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _minutes(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}m{whole % 60:02d}s" if whole >= 60 else f"{whole}s"


def _copy_kwok_stages(destination: Path) -> None:
    if destination.is_dir():
        return
    proc = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kwok"],
        cwd=GO_MODULE,
        env=_GO_ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise BuildError(f"locating kwok's module for its stage files failed:\n{proc.stderr}")
    stages = Path(proc.stdout.strip()) / "kustomize" / "stage"
    staging = destination.with_name(destination.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for relative in KWOK_STAGES:
        shutil.copyfile(stages / relative, staging / Path(relative).name)
    staging.rename(destination)


def kwok_stage_files() -> list[Path]:
    folder = ensure_built() / "kwok-stages"
    return [folder / Path(relative).name for relative in KWOK_STAGES]
