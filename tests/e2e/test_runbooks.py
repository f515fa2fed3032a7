"""The guide's runbooks played end to end: the simulated service's metrics change, Prometheus
sees it, the operator classifies, mitigates, verifies, and the record says what happened."""

from __future__ import annotations

import time

import pytest

from localkube.demo import BAD_IMAGE, GOOD_IMAGE
from localkube.processes import wait_until
from tests.support.objects import incident_manifest, timeline_events
from tests.support.service import Service

pytestmark = [pytest.mark.prometheus, pytest.mark.cluster]


def test_a_person_declares_an_incident_for_a_bad_deploy_and_it_is_rolled_back(
    luminamind: Service,
) -> None:
    luminamind.ship(BAD_IMAGE)

    def erroring() -> bool:
        rate = luminamind.error_rate()
        return rate is not None and rate > 0.05

    wait_until(erroring, timeout=60, what="errors after the bad deploy")
    started = time.monotonic()
    luminamind.resources.create(
        incident_manifest("manual", target="luminamind", title="errors after 1.5.0")
    )
    incident = luminamind.resources.wait_phase(
        "manual", "Resolved", "Escalated", "Failed", timeout=120
    )
    status = incident["status"]
    assert status["phase"] == "Resolved", (status.get("message"), timeline_events(incident))
    assert status["classification"]["severity"] == "P1"
    assert status["rule"] == "bad-rollout"
    assert status["actions"][0]["type"] == "rollback" and status["actions"][0]["state"] == "Applied"
    assert luminamind.deployment().spec.template.spec.containers[0].image == GOOD_IMAGE
    assert luminamind.healthy(), luminamind.error_rate()
    print(f"manual incident: resolved {time.monotonic() - started:.1f}s after it was declared")
