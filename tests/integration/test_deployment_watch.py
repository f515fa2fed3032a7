"""The operator's own Deployment watch (handlers/deployment_watch.py) against the real API
server: a paged listing, then a watch; and a watch resumed from an old version, as after an
absence, ends with the namespace's Deployments as they are: none lost, none kept that went
meanwhile, labels as changed meanwhile; and a watch the server ends (its timeout, here 1 s)
resumes without an error. (The server answers a watch from an old version with the history
since then while it holds it, else 410 Gone, and the watch lists again: early in a session
the history is there; later in a long suite it may be compacted away, and this test then goes
through the 410 path. A restarted API server or a restored etcd answers 410 too, and the fault
tier's operators list again there: tests/faults/test_control_plane_restarts.py and
test_etcd_restore.py, "listing again" in their logs. The 410 path's loop is a unit test too,
tests/unit/test_deployment_watch.py.)"""

from __future__ import annotations

import logging

import pytest
from kubernetes import client

from localkube.processes import wait_until
from localkube.testing import ClusterAccess
from mitigator.handlers.deployment_watch import DeploymentWatch
from mitigator.handlers.deployments import DeploymentCache
from mitigator.k8s import KubeClient
from tests.support.kube import deployment_manifest

pytestmark = pytest.mark.cluster


def _names(cache: DeploymentCache, namespace: str) -> set[str]:
    return {d.name for d in cache.in_namespace(namespace)}


def _app(cache: DeploymentCache, namespace: str, name: str) -> str | None:
    found = cache.get(namespace, name)
    return None if found is None else found.labels.get("team")


def test_a_watch_resumed_from_an_old_version_loses_no_deployment(
    cluster: ClusterAccess,
    api_client: client.ApiClient,
    namespace: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mitigator.deployments")
    apps = client.AppsV1Api(api_client)
    for i in range(5):
        apps.create_namespaced_deployment(
            namespace, deployment_manifest(f"d{i}", replicas=0, labels={"team": "a"})
        )
    moved: list[tuple[str, str]] = []
    listed: list[tuple[set[str], bool]] = []
    cache = DeploymentCache([namespace])
    watch = DeploymentWatch(
        KubeClient.from_environment(str(cluster.kubeconfig)),
        cache,
        moved=lambda ns, name: moved.append((ns, name)),
        listed=lambda namespaces, first: listed.append((namespaces, first)),
        page_size=2,  # three pages: the continue token is followed
        timeout_seconds=1,  # the server ends each watch at once: each resumes where it was
    )
    watch.start()
    try:
        wait_until(lambda: cache.synced, timeout=30, what="the first listing")
        assert _names(cache, namespace) == {f"d{i}" for i in range(5)}
        assert listed == [({namespace}, True)]
        # The watch follows a change, after watches the server ended.
        wait_until(lambda: watch.watches >= 3, timeout=30, what="two watches ended")
        apps.patch_namespaced_deployment("d4", namespace, {"metadata": {"labels": {"team": "b"}}})
        wait_until(lambda: _app(cache, namespace, "d4") == "b", timeout=30, what="d4 relabelled")
        assert (namespace, "d4") in moved
        # A watch the server ended is no error: no backoff, no warning.
        # (This watch's lines only: the session's in-process operator logs in this process.)
        warnings = [
            r.getMessage()
            for r in caplog.records
            if r.levelno >= logging.WARNING
            and r.name == "mitigator.deployments"
            and namespace in r.getMessage()
        ]
        assert warnings == []
    finally:
        watch.stop()
    # Its own threads: the session's in-process operator has watch threads of its own.
    assert not watch.running

    # Away: one goes, one changes its labels, one comes; no watch sees it.
    apps.delete_namespaced_deployment("d0", namespace)
    apps.patch_namespaced_deployment("d1", namespace, {"metadata": {"labels": {"team": "c"}}})
    apps.create_namespaced_deployment(
        namespace, deployment_manifest("d5", replicas=0, labels={"team": "a"})
    )
    # Back, from the oldest version there is.
    watch.start(resume_from="1")
    try:
        wait_until(
            lambda: (
                _names(cache, namespace) == {"d1", "d2", "d3", "d4", "d5"}
                and _app(cache, namespace, "d1") == "c"
            ),
            timeout=30,
            what="the changes made while away",
        )
        # Told either way: the server replayed the history since that version (each change
        # told), or had compacted it away (410 Gone, as in a long suite) and the namespace was
        # listed again (told as changed).
        replayed = {(namespace, "d0"), (namespace, "d1"), (namespace, "d5")} <= set(moved)
        relisted = any(namespace in names for names, first in listed[1:] if not first)
        assert replayed or relisted, (moved, listed)
        # And it goes on watching.
        apps.delete_namespaced_deployment("d2", namespace)
        wait_until(lambda: "d2" not in _names(cache, namespace), timeout=30, what="d2 gone")
        assert _names(cache, namespace) == {"d1", "d3", "d4", "d5"}
    finally:
        watch.stop()
