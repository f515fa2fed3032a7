"""``python -m localkube build|up|down|status``: the local control plane for people.

``up`` leaves the cluster running in the background and prints ``export KUBECONFIG=<path>``
as its last line; ``down`` stops every process ``up`` started.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from localkube.build import BuildError, cache_root, ensure_built
from localkube.cluster import LocalCluster, remove_workdir, stop_from_state


def _cluster_dir() -> Path:
    return Path(os.environ.get("LOCALKUBE_DIR", cache_root() / "cluster"))


def _build(_: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        out = ensure_built()
    except BuildError as exc:
        print(f"localkube: {exc}", file=sys.stderr)
        return 1
    print(f"localkube: binaries in {out} ({time.monotonic() - started:.0f}s)")
    for path in sorted(out.iterdir()):
        if path.is_symlink():
            print(f"  {path.name:28} -> {os.readlink(path)}")
        elif path.is_file() and not path.name.startswith("."):
            print(f"  {path.name:28} {path.stat().st_size / 2**20:7.1f} MiB")
    return 0


def _up(args: argparse.Namespace) -> int:
    workdir = _cluster_dir()
    if (workdir / "state.json").exists():
        stop_from_state(workdir)
    # A fresh cluster every time: etcd data from an earlier run would hold stale objects.
    remove_workdir(workdir)
    cluster = LocalCluster(workdir=workdir, nodes=args.nodes)
    started = time.monotonic()
    cluster.start()
    bins = ensure_built()
    print(f"localkube: control plane up in {time.monotonic() - started:.1f}s at {cluster.server}")
    print(f"localkube: logs in {cluster.logs_dir}; kubectl is {bins / 'kubectl'}")
    print(f'export PATH="{bins}:$PATH"')
    print(f"export KUBECONFIG={cluster.kubeconfig}")
    return 0


def _down(_: argparse.Namespace) -> int:
    stopped = stop_from_state(_cluster_dir())
    print(f"localkube: stopped {', '.join(stopped) if stopped else 'nothing (no cluster up)'}")
    return 0


def _status(_: argparse.Namespace) -> int:
    state = _cluster_dir() / "state.json"
    if not state.exists():
        print("localkube: no cluster up")
        return 1
    print(json.dumps(json.loads(state.read_text()), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localkube", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build (or find cached) binaries").set_defaults(run=_build)
    up = commands.add_parser("up", help="start a control plane and leave it running")
    up.add_argument("--nodes", type=int, default=1)
    up.set_defaults(run=_up)
    commands.add_parser("down", help="stop the control plane `up` started").set_defaults(run=_down)
    commands.add_parser("status", help="show the running control plane").set_defaults(run=_status)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
