"""Clock skew between Alertmanager and the cluster (issue 13, point 9): Incidents whose alert
timestamps lie far in the future or far in the past neither stall nor skip the verification
window; the operator measures its windows on its own clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

from tests.support.faults import OperatorProcess
from tests.support.kube import BAD, deploy_good_then_bad
from tests.support.objects import Resources, incident_manifest, policy_manifest
from tests.support.responder import Responder, image

pytestmark = pytest.mark.cluster

HEALTHY, FAILING = (0.0, 0.2), (0.3, 0.2)
WINDOW = timedelta(seconds=3)
SKEWS = {"future": "2099-01-01T00:00:00Z", "past": "1971-01-01T00:00:00Z"}


def _source(starts_at: str) -> dict[str, Any]:
    return {
        "type": "alertmanager",
        "alertname": "HighErrorRate",
        "fingerprint": "0123456789abcdef",
        "labels": {"alertname": "HighErrorRate", "severity": "critical"},
        "alerts": [
            {
                "fingerprint": "0123456789abcdef",
                "alertname": "HighErrorRate",
                "status": "firing",
                "startsAt": starts_at,
            }
        ],
    }


def test_alert_timestamps_far_off_neither_stall_nor_skip_verification(
    *,
    fault_api: client.ApiClient,
    fault_apps: client.AppsV1Api,
    fault_namespace: str,
    fault_operator: OperatorProcess,
    signals: Any,
) -> None:
    namespace, apps = fault_namespace, fault_apps
    resources = Resources(fault_api, namespace)
    for name in SKEWS:
        deploy_good_then_bad(apps, namespace, name)
        resources.create(
            policy_manifest(
                name,
                app=name,
                rules=[{"name": "any", "actions": [{"rollback": {}}]}],
                window=f"{int(WINDOW.total_seconds())}s",
            )
        )

    def health(dep: dict[str, Any]) -> tuple[float, float]:
        return FAILING if image(dep) == BAD else HEALTHY

    with (
        Responder(fault_api, signals, namespace=namespace, name="future", health=health),
        Responder(fault_api, signals, namespace=namespace, name="past", health=health),
    ):
        fault_operator.start()
        started = time.monotonic()
        # The operator's clock and this one are the machine's: its stamps of these Incidents
        # fall between these two readings (whole seconds either side: stamps may be rounded).
        before = datetime.now(UTC).replace(microsecond=0)
        for name, starts_at in SKEWS.items():
            resources.create(incident_manifest(name, target=name, source=_source(starts_at)))
        # Not stalled: each reaches Resolved (a window measured from 2099 never would).
        done = {
            name: resources.wait_phase(name, "Resolved", "Escalated", "Failed", timeout=60)
            for name in SKEWS
        }
        after = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        took = time.monotonic() - started
    for name in SKEWS:
        status = done[name]["status"]
        assert status["phase"] == "Resolved", (name, status.get("message"))
        passing = datetime.fromisoformat(status["verification"]["passingSince"])
        resolved = datetime.fromisoformat(status["resolvedAt"])
        detected = datetime.fromisoformat(status["detectedAt"])
        assert resolved - passing >= WINDOW, (name, "the window was cut short")
        for stamp in (detected, passing, resolved):
            assert before <= stamp <= after, (name, "stamped off its clock", stamp, before, after)
    print(f"both skewed incidents resolved within {took:.1f}s")
