"""Generate the Go module that builds the local control plane as one multi-call binary.

One module requires k8s.io/kubernetes, etcd's server and kwok at the pinned versions, so
their shared dependencies (client-go, apimachinery, grpc, etcd's client, ...) resolve to one
version each and compile once. Go's minimal version selection takes the highest version any
of them asks for; moved-versions.txt lists which shared modules moved for which project.

k8s.io/kubernetes replaces its staging modules (k8s.io/api, k8s.io/client-go, ...) with
paths inside its own repository. A module that depends on it must replace each of them with
the published v0.<minor>.<patch> tag instead. The list is read from the upstream go.mod so
that a version bump is one edit of localkube/versions.py, not forty.

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


def _go_version(upstream_gomod: str) -> tuple[int, ...]:
    match = re.search(r"^go (\S+)$", upstream_gomod, re.M)
    assert match, "upstream go.mod has no go directive"
    return tuple(int(part) for part in match.group(1).split("."))


def _requirements(gomod: str) -> dict[str, str]:
    return dict(re.findall(r"^\s*([\w.~/-]+) (v\S+)(?: // indirect)?$", gomod, re.M))


def main() -> None:
    upstream = {
        "k8s.io/kubernetes": (f"v{KUBERNETES_VERSION}", ""),
        "go.etcd.io/etcd/server/v3": (f"v{ETCD_VERSION}", ""),
        "sigs.k8s.io/kwok": (f"v{KWOK_VERSION}", ""),
    }
    gomods = {module: _upstream_gomod(module, version) for module, (version, _) in upstream.items()}
    staging = "v0." + KUBERNETES_VERSION.split(".", 1)[1]
    replaces = "\n".join(
        f"\t{line}" for line in staging_replacements(gomods["k8s.io/kubernetes"], staging)
    )
    go_line = ".".join(str(p) for p in max(_go_version(text) for text in gomods.values()))
    requires = "\n".join(f"\t{module} {version}" for module, (version, _) in upstream.items())
    (HERE / "go.mod").write_text(
        f"module mitigator.local/localkube\n\ngo {go_line}\n\n"
        f"require (\n{requires}\n)\n\nreplace (\n{replaces}\n)\n"
    )
    _go("mod", "tidy", cwd=HERE)
    # Report what minimal version selection moved: a shared module each project now gets at
    # a higher version than its own go.mod asked for (a replace directive wins over both).
    ours = (HERE / "go.mod").read_text()
    chosen = _requirements(ours) | dict(re.findall(r"^\s*(\S+) => \S+ (v\S+)$", ours, re.M))
    moved = [
        f"{project}: {module} {wanted} -> {got}\n"
        for project, gomod in gomods.items()
        for module, wanted in sorted(_requirements(gomod).items())
        if (got := chosen.get(module)) and got != wanted and wanted != "v0.0.0"
    ]
    (HERE / "moved-versions.txt").write_text(
        "# Written by generate.py: shared modules that one module for all three moved to a\n"
        "# higher version than the project's own go.mod asks for (project: module asked -> got).\n"
        + "".join(moved)
    )

if __name__ == "__main__":
    main()
