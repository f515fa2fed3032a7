"""Build the control plane's binaries from Go modules, cached by version.

Only the first build pays: binaries land in ``$MITIGATOR_CACHE/bin/<key>/`` (default
``~/.cache/mitigator``), where the key hashes the pinned versions and the modules' go.mod and
go.sum, so a version bump builds afresh and an unchanged tree reuses what is there.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from localkube.versions import ETCD_VERSION, KUBERNETES_VERSION, KWOK_VERSION

GO_MODULES = Path(__file__).resolve().parent / "go"


class BuildError(RuntimeError):
    """A build step failed; the message names the step and carries the Go output."""


@dataclass(frozen=True)
class GoTarget:
    step: str
    module_dir: str
    packages: tuple[str, ...]
    outputs: tuple[str, ...]
    ldflags: str = "-s -w"


def _kube_version_ldflags() -> str:
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


KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
TARGETS = (
    GoTarget("etcd", "etcd", (".",), ("etcd",)),
    GoTarget("kwok", "kwok", ("sigs.k8s.io/kwok/cmd/kwok",), ("kwok",)),
    GoTarget(
        "kubernetes",
        "k8s",
        tuple(f"k8s.io/kubernetes/cmd/{c}" for c in KUBE_COMMANDS),
        KUBE_COMMANDS,
        _kube_version_ldflags(),
    ),
)
BINARIES = tuple(name for target in TARGETS for name in target.outputs)
# kwok's own stage files (shipped in its module): node initialise + heartbeat, pod lifecycle.
KWOK_STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat/node-heartbeat.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)


def cache_root() -> Path:
    return Path(os.environ.get("MITIGATOR_CACHE", Path.home() / ".cache" / "mitigator"))


def build_key() -> str:
    digest = hashlib.sha256(f"{KUBERNETES_VERSION}/{ETCD_VERSION}/{KWOK_VERSION}".encode())
    for path in sorted(GO_MODULES.glob("*/go.*")) + sorted(GO_MODULES.glob("*/*.go")):
        digest.update(path.read_bytes())
    versions = f"k8s-{KUBERNETES_VERSION}-etcd-{ETCD_VERSION}-kwok-{KWOK_VERSION}"
    return f"{versions}-{digest.hexdigest()[:12]}"


def bin_dir() -> Path:
    return cache_root() / "bin" / build_key()


def _output_flag(target: GoTarget, folder: Path) -> list[str]:
    # `go build -o DIR .` names the binary after the module; etcd's must be called "etcd".
    return ["-o", str(folder / "etcd")] if target.step == "etcd" else ["-o", f"{folder}/"]


def ensure_built(*, log: bool = True) -> Path:
    """Return the folder holding all binaries, building whatever is missing."""
    out = bin_dir()
    if all((out / name).exists() for name in BINARIES) and (out / "kwok-stages").is_dir():
        return out
    out.mkdir(parents=True, exist_ok=True)
    # Parallel test workers may all ask at once: one builds, the others wait for it.
    with (out / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _build_missing(out, log=log)
    return out


def _build_missing(out: Path, *, log: bool) -> None:
    for target in TARGETS:
        if all((out / name).exists() for name in target.outputs):
            continue
        started = time.monotonic()
        if log:
            print(f"localkube: building {target.step} into {out}", file=sys.stderr, flush=True)
        # Build beside the cache and move in only complete binaries: an interrupted build
        # must never leave a truncated file that a later run would take as built.
        partial = out / f".partial-{target.step}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        cmd = [
            "go",
            "build",
            "-trimpath",
            f"-ldflags={target.ldflags}",
            *_output_flag(target, partial),
        ]
        proc = subprocess.run(
            [*cmd, *target.packages],
            cwd=GO_MODULES / target.module_dir,
            env=_GO_ENV,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise BuildError(
                f"building {target.step} failed (exit {proc.returncode}) in "
                f"{GO_MODULES / target.module_dir}: {' '.join(cmd)}\n{proc.stderr[-8000:]}"
            )
        for name in target.outputs:
            (partial / name).rename(out / name)
        partial.rmdir()
        if log:
            took = time.monotonic() - started
            print(f"localkube: built {target.step} in {took:.0f}s", file=sys.stderr, flush=True)
    _copy_kwok_stages(out / "kwok-stages")


_GO_ENV = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}


def _copy_kwok_stages(destination: Path) -> None:
    if destination.is_dir():
        return
    proc = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kwok"],
        cwd=GO_MODULES / "kwok",
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
