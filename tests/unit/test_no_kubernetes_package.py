"""`mitigator run` and `mitigator bridge` never import the kubernetes package (about 20 MB
of generated classes per process, and 90 MB more once its API classes are built): each
command is run in a fresh interpreter up to the point where it would start serving (for
`run`, every module of mitigator is then imported too: one imported later, by a handler,
must not bring it in either)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:9"}}]
users: [{name: u, user: {token: not-a-real-token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""

# Then what the operator's start-up handler builds (and, for `run`, every module).
PROBE = """
import importlib, pkgutil, sys
import mitigator
from mitigator.k8s import KubeClient

def probe(*_, everything=True, **__):
    KubeClient.from_environment_pooled(pool_size=4)
    for module in pkgutil.walk_packages(mitigator.__path__, "mitigator.") if everything else ():
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    loaded = sorted(
        name for name, module in sys.modules.items()
        if name.split(".")[0] == "kubernetes" and module is not None
    )
    print("loaded:", loaded, "kopf:", "kopf" in sys.modules)
    sys.exit(1 if loaded else 0)
"""

# `mitigator run` as it is, up to kopf.run(), which the probe replaces once kopf is
# imported (the command imports kopf itself: the test must not do it first).
RUN = (
    PROBE
    + """
import importlib.util

class ProbeForKopfRun:
    def find_spec(self, name, path=None, target=None):
        if name != "kopf":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        execute = spec.loader.exec_module
        def exec_module(module):
            execute(module)
            module.run = probe
        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, ProbeForKopfRun())
from mitigator import cli
cli.main(["run", "--namespace", "nowhere", "--no-leader-elect"])
sys.exit("kopf.run() was not reached")
"""
)

# `mitigator bridge` as it is, up to serving.
BRIDGE = (
    PROBE
    + """
from mitigator import cli
from mitigator.bridge import server

async def serve(*_, **__):
    probe(everything=False)

server.serve_until_signalled = serve
cli.main(["bridge"])
sys.exit("the bridge did not start serving")
"""
)


def _run(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    env = {
        "PYTHONPATH": str(ROOT / "operator"),
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "KUBECONFIG": str(kubeconfig),
        "MITIGATOR_BRIDGE_TOKEN": "t" * 32,
    }
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )


def test_the_operator_runs_without_the_kubernetes_package(tmp_path: Path) -> None:
    result = _run(RUN, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "loaded: [] kopf: True" in result.stdout


def test_the_bridge_runs_without_the_kubernetes_package(tmp_path: Path) -> None:
    result = _run(BRIDGE, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "loaded: [] kopf: False" in result.stdout
