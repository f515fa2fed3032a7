"""What tests, benchmarks and the demo get from the harness: a cluster to talk to.

``LocalCluster`` (ours, built from Go modules) or, with ``MITIGATOR_TEST_KUBECONFIG`` set,
any existing cluster (kind, k3d, staging), in which the suite only creates and deletes its own
namespaces.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from localkube.build import ensure_built
from localkube.cluster import LocalCluster
from localkube.processes import tie_children_to_this_process

TEST_NAMESPACE_LABEL = "mitigator.luminamind.io/test-namespace"


@dataclass(frozen=True)
class ClusterAccess:
    kubeconfig: Path
    local: LocalCluster | None  # None when the suite runs against an existing cluster

    @property
    def logs_dir(self) -> Path | None:
        return self.local.logs_dir if self.local else None


@contextmanager
def cluster_for_tests() -> Iterator[ClusterAccess]:
    existing = os.environ.get("MITIGATOR_TEST_KUBECONFIG")
    # A test session killed before its teardown must not leave a control plane running.
    tie_children_to_this_process()
    bins = ensure_built()
    # kubectl (built with the control plane) is on the PATH of everything the tests start.
    os.environ["PATH"] = f"{bins}{os.pathsep}{os.environ.get('PATH', '')}"
    if existing:
        yield ClusterAccess(kubeconfig=Path(existing), local=None)
        return
    cluster = LocalCluster.in_tempdir()
    cluster.start()
    try:
        yield ClusterAccess(kubeconfig=cluster.kubeconfig, local=cluster)
    finally:
        cluster.stop()  # raises if any process survived


def new_namespace_name(prefix: str = "mt") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
