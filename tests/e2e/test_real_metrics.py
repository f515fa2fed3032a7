"""Metrics as real services emit them: series per pod, born with the pod (a 5xx series only
at a pod's first 5xx) and gone with it. A rollback to a version that serves no error at all
leaves no 5xx series anywhere, and must still verify; a target without traffic has no ratio
to speak of, and must never pass for healthy."""

from __future__ import annotations

import pytest

from localkube.demo import BAD_IMAGE, SERVICE
from localkube.processes import wait_until
from tests.support.objects import incident_manifest, timeline_events
from tests.support.service import Service

pytestmark = [pytest.mark.prometheus, pytest.mark.cluster]
CLEAN_IMAGE = "registry.luminamind.local/luminamind:1.4.3-clean"
TERMINAL = ("Resolved", "Escalated", "Failed")


def _pods(service: Service) -> set[str]:
    selector = f"app={SERVICE}"
    return {
        pod.metadata.name
        for pod in service.core()
        .list_namespaced_pod(service.namespace, label_selector=selector)
        .items
        if not pod.metadata.deletion_timestamp
    }


def test_a_rollback_to_a_version_without_errors_resolves(luminamind: Service) -> None:
    luminamind.ship(CLEAN_IMAGE)
    wait_until(lambda: luminamind.error_rate() == 0.0, timeout=60, what="the clean version")
    luminamind.ship(BAD_IMAGE)
    wait_until(
        lambda: (luminamind.error_rate() or 0.0) > 0.05, timeout=60, what="the bad version's errors"
    )
    luminamind.resources.create(incident_manifest("errors", target=SERVICE))
    incident = luminamind.resources.wait_phase("errors", *TERMINAL, timeout=120)
    status = incident["status"]
    assert status["phase"] == "Resolved", (status.get("message"), timeline_events(incident))
    assert status["actions"][0]["after"]["images"] == {"app": CLEAN_IMAGE}
    checks = {c["name"]: c for c in status["verification"]["checks"]}
    assert checks["errorRate"]["passed"] and checks["errorRate"]["observed"] == "0%"
    # It verified with no 5xx series for any pod running now: the case a plain ratio of two
    # rates answers with no data.
    pods = "|".join(sorted(_pods(luminamind)))
    assert not luminamind.value(
        f'luminamind_requests_total{{namespace="$namespace",status=~"5..",pod=~"{pods}"}}'
    )


def test_a_target_without_traffic_stays_unknown(luminamind: Service) -> None:
    luminamind.annotate(traffic="0")
    wait_until(
        lambda: luminamind.error_rate() is None, timeout=60, what="no request counted any more"
    )
    luminamind.resources.create(incident_manifest("quiet", target=SERVICE))
    incident = luminamind.resources.wait_phase("quiet", *TERMINAL, timeout=60)
    status = incident["status"]
    classification = status["classification"]
    assert classification["severity"] == "Unknown", classification
    assert classification["evidenceComplete"] is False
    assert classification["observed"]["errorRate"]["status"] == "no_data"
    assert status["phase"] != "Resolved"
    assert not status.get("actions") or all(a["state"] != "Applied" for a in status["actions"])
