"""Upstream CRDs the tests install (Argo CD's Application, Flux's Kustomization), taken from
their projects' Go module zips through the Go module proxy, cached by version.

`go mod download` leaves the zip in the module cache even when it refuses the module (these
need a newer Go than the one that builds the control plane): the CRD files are all we read.
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

from localkube.build import cache_root


@dataclass(frozen=True)
class UpstreamFile:
    module: str
    version: str
    path: str  # inside the module

    @property
    def cached(self) -> Path:
        name = self.module.replace("/", "_")
        return cache_root() / "upstream" / f"{name}@{self.version}" / Path(self.path).name


ARGO_CD_APPLICATION_CRD = UpstreamFile(
    "github.com/argoproj/argo-cd/v3", "v3.6.1", "manifests/crds/application-crd.yaml"
)
FLUX_KUSTOMIZATION_CRD = UpstreamFile(
    "github.com/fluxcd/kustomize-controller",
    "v1.10.1",
    "config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml",
)

# The Prometheus Operator's CRDs the monitoring objects (config/monitoring) are checked against.
_PROMETHEUS_OPERATOR = ("github.com/prometheus-operator/prometheus-operator", "v0.85.0")
MONITORING_CRDS = tuple(
    UpstreamFile(
        *_PROMETHEUS_OPERATOR,
        f"example/prometheus-operator-crd/monitoring.coreos.com_{plural}.yaml",
    )
    for plural in ("podmonitors", "servicemonitors", "prometheusrules")
)


def fetch(file: UpstreamFile) -> Path:
    """The file, from the cache or from the module's zip."""
    if file.cached.exists():
        return file.cached
    cache_root().mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["go", "mod", "download", "-json", f"{file.module}@{file.version}"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"},
        cwd=cache_root(),
    )
    try:
        zip_path = Path(json.loads(result.stdout)["Zip"])
    except (ValueError, KeyError) as exc:
        raise RuntimeError(
            f"go mod download {file.module}@{file.version} gave no zip: "
            f"{result.stdout[-500:]} {result.stderr[-500:]}"
        ) from exc
    member = f"{file.module}@{file.version}/{file.path}"
    with zipfile.ZipFile(zip_path) as archive:
        data = archive.read(member)
    file.cached.parent.mkdir(parents=True, exist_ok=True)
    partial = file.cached.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(file.cached)
    return file.cached
