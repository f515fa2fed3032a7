"""Generate the Go modules that build the local control plane.

k8s.io/kubernetes replaces its staging modules (k8s.io/api, k8s.io/client-go, ...) with
paths inside its own repository. A module that depends on it must replace each of them with
the published v0.<minor>.<patch> tag instead. The list is read from the upstream go.mod so
that a version bump is one edit of VERSIONS, not forty.

Run: python tools/localkube/go/generate.py   (then commit go.mod and go.sum)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from localkube.versions import ETCD_VERSION, KUBERNETES_VERSION, KWOK_VERSION  # noqa: E402

GO_ENV = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}

KUBERNETES_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")


def _go(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["go", *args], cwd=cwd, env=GO_ENV, check=True, capture_output=True, text=True
    ).stdout


def _upstream_gomod(module: str, version: str) -> str:
    info = json.loads(_go("mod", "download", "-json", f"{module}@{version}", cwd=HERE))
    return Path(info["GoMod"]).read_text()


def staging_replacements(upstream_gomod: str, staging_version: str) -> list[str]:
    """Staging modules that kubernetes both requires and replaces locally, pinned to tags."""
    replaced = set(re.findall(r"^\s*(k8s\.io/[\w.-]+) => \./staging/", upstream_gomod, re.M))
    required = set(re.findall(r"^\s*(k8s\.io/[\w.-]+) v0\.0\.0\b", upstream_gomod, re.M))
    return [f"{m} => {m} {staging_version}" for m in sorted(replaced & required)]


def _tools_go(imports: str) -> str:
    return (
        "//go:build tools\n\n// Package tools pins the commands this module builds.\n"
        f"package tools\n\nimport (\n{imports})\n"
    )


ETCD_MAIN_GO = """// Command etcd is etcd's own server entry point, built from go.etcd.io/etcd/server/v3.
package main

import (
\t"os"

\t"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
\tetcdmain.Main(os.Args)
}
"""


def _write_module(
    directory: Path, *, module: str, go_line: str, body: str, source: tuple[str, str]
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "go.mod").write_text(f"module {module}\n\n{go_line}\n\n{body}")
    filename, text = source
    (directory / filename).write_text(text)
    _go("mod", "tidy", cwd=directory)


def _go_line(upstream_gomod: str) -> str:
    match = re.search(r"^go (\S+)$", upstream_gomod, re.M)
    assert match, "upstream go.mod has no go directive"
    return f"go {match.group(1)}"


def main() -> None:
    kube = _upstream_gomod("k8s.io/kubernetes", f"v{KUBERNETES_VERSION}")
    staging = "v0." + KUBERNETES_VERSION.split(".", 1)[1]
    replaces = "\n".join(f"\t{line}" for line in staging_replacements(kube, staging))
    _write_module(
        HERE / "k8s",
        module="mitigator.local/localkube/k8s",
        go_line=_go_line(kube),
        body=f"require k8s.io/kubernetes v{KUBERNETES_VERSION}\n\nreplace (\n{replaces}\n)\n",
        source=(
            "tools.go",
            _tools_go("".join(f'\t_ "k8s.io/kubernetes/cmd/{c}"\n' for c in KUBERNETES_COMMANDS)),
        ),
    )
    etcd = _upstream_gomod("go.etcd.io/etcd/server/v3", f"v{ETCD_VERSION}")
    _write_module(
        HERE / "etcd",
        module="mitigator.local/localkube/etcd",
        go_line=_go_line(etcd),
        body=f"require go.etcd.io/etcd/server/v3 v{ETCD_VERSION}\n",
        source=("main.go", ETCD_MAIN_GO),
    )
    kwok = _upstream_gomod("sigs.k8s.io/kwok", f"v{KWOK_VERSION}")
    _write_module(
        HERE / "kwok",
        module="mitigator.local/localkube/kwok",
        go_line=_go_line(kwok),
        body=f"require sigs.k8s.io/kwok v{KWOK_VERSION}\n",
        source=("tools.go", _tools_go('\t_ "sigs.k8s.io/kwok/cmd/kwok"\n')),
    )


if __name__ == "__main__":
    main()
