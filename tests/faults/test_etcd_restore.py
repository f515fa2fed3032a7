"""etcd loses data (issue 13: what is lost if etcd loses data). The store is rolled back to a
copy of etcd's data directory taken before the operator acted (T1), as a restore from backup
does, after the operator applied its rollback and resolved the Incident. The restore is done
as it should be (`LocalCluster.restore_etcd`): API server and controllers stopped, the
revision moved past what clients saw and compacted, everything started again. The operator
is not restarted (it is frozen while the restore is done and checked): its watches get 410
Gone and list again.

The action's record on the target and the Incident's status went back together, so the
operator must find an Incident still to be handled and a target with no record of it, apply
the step again, once, on top of the restored state, and complete the Incident.

This found a bug, fixed: the operator skipped every tick of an Incident whose stored status
was behind its own last write (`handlers/freshness.py`), waiting for a write the restore had
erased; the Incident never moved again in that process."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from localkube.cluster import LocalCluster
from mitigator import ACTIONS_ANNOTATION
from tests.support.faults import OperatorProcess, revision
from tests.support.kube import BAD, GOOD, deploy_good_then_bad
from tests.support.objects import Resources, incident_manifest, policy_manifest, timeline_events
from tests.support.responder import Responder, image

pytestmark = [pytest.mark.cluster, pytest.mark.prometheus]

HEALTHY, FAILING = (0.0, 0.2), (0.3, 0.2)
# No `when`: the rule acts on whatever Prometheus says right after the restore.
ANY_RULE = {"name": "any", "actions": [{"rollback": {}}]}


def _health(dep: dict[str, Any]) -> tuple[float, float]:
    return FAILING if image(dep) == BAD else HEALTHY


def _records(apps: client.AppsV1Api, namespace: str, name: str) -> list[dict[str, Any]]:
    """The action records on the target (the exactly-once record)."""
    annotations = apps.read_namespaced_deployment(name, namespace).metadata.annotations or {}
    records: list[dict[str, Any]] = json.loads(annotations.get(ACTIONS_ANNOTATION) or "[]")
    return records


def _image(apps: client.AppsV1Api, namespace: str, name: str) -> str:
    dep = apps.read_namespaced_deployment(name, namespace)
    return str(dep.spec.template.spec.containers[0].image)


def test_an_etcd_restore_from_before_the_action_makes_the_operator_apply_it_once_more(
    *,
    fault_plane: LocalCluster,
    fault_api: client.ApiClient,
    fault_apps: client.AppsV1Api,
    fault_namespace: str,
    fault_operator: OperatorProcess,
    signals: Any,
    tmp_path: Path,
) -> None:
    namespace, apps = fault_namespace, fault_apps
    resources = Resources(fault_api, namespace)
    deploy_good_then_bad(apps, namespace, "restored")
    resources.create(policy_manifest("restored", app="restored", rules=[ANY_RULE]))
    resources.create(incident_manifest("restored", target="restored"))
    at_t1 = revision(apps, namespace, "restored")
    backup = tmp_path / "etcd-at-t1"
    with Responder(fault_api, signals, namespace=namespace, name="restored", health=_health):
        # T1: the Incident exists, nothing has handled it, the target is BAD.
        fault_plane.copy_etcd(backup)
        fault_operator.start()
        before = resources.wait_phase("restored", "Resolved", "Escalated", "Failed", timeout=90)
        assert before["status"]["phase"] == "Resolved", before["status"].get("message")
        assert revision(apps, namespace, "restored") == at_t1 + 1
        assert len(_records(apps, namespace, "restored")) == 1
        # The operator is frozen (SIGSTOP) while the store is rolled back and checked: what
        # the restore brought back is read before the operator can act on it, however long
        # the restarts take on a loaded machine. (Running, it may start on the restored
        # Incident once the API server answers, while the controllers are still starting.)
        # Resumed, it finds that its connections were closed under it and lists again, as
        # after any outage, with everything it remembers of its own writes.
        assert fault_operator.process is not None
        os.kill(fault_operator.process.pid, signal.SIGSTOP)
        try:
            fault_plane.restore_etcd(backup)
            # What the restore brought back: the state of T1, on both sides.
            assert not (resources.incident("restored").get("status") or {}).get("phase")
            assert revision(apps, namespace, "restored") == at_t1
            assert _records(apps, namespace, "restored") == []
        finally:
            os.kill(fault_operator.process.pid, signal.SIGCONT)
        restored_at = time.monotonic()
        after = resources.wait_phase("restored", "Resolved", "Escalated", "Failed", timeout=90)
        print(f"resolved again {time.monotonic() - restored_at:.1f}s after the restore")
        assert fault_operator.process is not None
        alive = fault_operator.process.poll() is None
        assert alive, "the operator died:\n" + fault_operator.tail()
    status = after["status"]
    assert status["phase"] == "Resolved", status.get("message")
    # Applied again exactly once on top of the restored state: BAD -> GOOD, one revision.
    assert revision(apps, namespace, "restored") == at_t1 + 1
    assert _image(apps, namespace, "restored") == GOOD
    assert len(_records(apps, namespace, "restored")) == 1
    [action] = status["actions"]
    assert action["state"] == "Applied"
    # A fresh application, not a record found on the target ("recovered"): both were lost.
    assert "recovered" not in action["message"], action["message"]
    assert timeline_events(after).count("ActionApplied") == 1
    # The operator says why it went on from a status older than its own last write.
    assert "the store lost writes" in fault_operator.tail(200_000)
    assert fault_operator.tracebacks() == [], fault_operator.tail()
