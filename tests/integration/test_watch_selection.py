"""Incidents the operator owes nothing more stay out of its watch (handlers/watch_selection.py,
the CRD's selectable fields `.status.settled` and `.status.phase`). An Incident is written
`settled` in the write that makes it final when no resolved notice can be owed; by the
escalation timer for a Resolved one whose policy has escalation levels (it alone pages, so no
page can race the settling); or in the write that records its resolved notices done. It then
leaves the watch (DELETED) and is not written to again. Present at a start, settled, Failed
and Suppressed ones are not loaded, while open ones and a Resolved one an older build left
(no `settled`) are.

The operator runs as its own process (its shipped RBAC, a namespace of its own), so that its
`/metrics` (`mitigator_incidents`: the Incidents it watches, by phase) counts this test's
Incidents only."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from localkube.monitoring import Prometheus
from localkube.processes import free_port, wait_until
from tests.support.kube import GOOD, deployment_manifest, wait_rollout
from tests.support.objects import GROUP, VERSION, Resources, incident_manifest, policy_manifest
from tests.support.responder import Responder
from tests.support.world import start_operator

pytestmark = pytest.mark.cluster

NOW = "2026-01-01T00:00:00Z"
# A level that was paged for the incident and not yet told of its resolution.
TOLD = {"level": 1, "name": "on-call", "delivered": True, "notifiedAt": NOW}


def _watched(port: int) -> dict[str, float]:
    """`mitigator_incidents` by phase, from the operator's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("mitigator_incidents{"):
            labels, value = line.rsplit(" ", 1)
            phase = labels.split('phase="', 1)[1].split('"', 1)[0]
            counts[phase] = counts.get(phase, 0.0) + float(value)
    return {phase: count for phase, count in counts.items() if count}


def _left(resources: Resources, name: str, phase: str, **status: Any) -> dict[str, Any]:
    """An Incident made as if an earlier operator had left it in `phase` with `status`."""
    resources.create(incident_manifest(name, target="web"))
    body: dict[str, Any] = {"phase": phase, "detectedAt": NOW, **status}
    if phase == "Resolved":
        body["resolvedAt"] = NOW
    patched: dict[str, Any] = resources.custom.patch_namespaced_custom_object_status(  # type: ignore[assignment]
        GROUP, VERSION, resources.namespace, "incidents", name, {"status": body}
    )
    return patched


def _level(webhook: str) -> list[dict[str, Any]]:
    return [{"after": "0s", "level": 1, "name": "on-call", "webhook": webhook}]


def test_incidents_owed_nothing_more_stay_out_of_the_watch(
    *,
    operator_kubeconfig: Path,
    prometheus: Prometheus,
    signals: Any,
    api_client: client.ApiClient,
    own_namespace: str,
    tmp_path: Path,
    webhook_receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    namespace = own_namespace
    url, received = webhook_receiver
    apps = client.AppsV1Api(api_client)
    resources = Resources(api_client, namespace)
    apps.create_namespaced_deployment(namespace, deployment_manifest("web", image=GOOD))
    wait_rollout(apps, namespace, "web")
    resources.create(
        policy_manifest(
            "restarts",
            app="web",
            rules=[{"name": "any", "actions": [{"restart": {}}]}],
            # An Incident whose Deployment does not exist fails after this.
            guardrails={"targetWait": "1s"},
        )
    )
    # Its receiver is down at first: the resolved notice owed cannot be delivered yet.
    paging = policy_manifest(
        "paging",
        app="no-such-app",
        rules=[{"name": "any", "actions": [{"restart": {}}]}],
        escalation=_level(f"http://127.0.0.1:{free_port()}/down"),
        guardrails={"targetWait": "1s"},  # as `restarts`, for the Incident on no Deployment
    )
    resources.create(paging)
    before = {
        "old-failed": _left(resources, "old-failed", "Failed"),
        "old-suppressed": _left(resources, "old-suppressed", "Suppressed"),
        "old-settled": _left(resources, "old-settled", "Resolved", settled=True),
    }
    # Left by an older build (no `settled`): loaded, as it may owe notices.
    _left(resources, "old-resolved", "Resolved")
    _left(resources, "owed", "Resolved", policy="paging", escalation={"levels": [TOLD]})
    _left(resources, "escalated", "Escalated", policy="restarts")
    port = free_port()
    operator = start_operator(
        operator_kubeconfig,
        prometheus,
        namespace,
        tmp_path / "operator.log",
        MITIGATOR_METRICS_PORT=str(port),
        MITIGATOR_METRICS_HOST="127.0.0.1",
    )
    try:
        wait_until(
            lambda: _watched(port) == {"Resolved": 2.0, "Escalated": 1.0},
            timeout=60,
            what="the operator to load the unsettled Incidents only",
        )
        # The notice owed failed once: still owed, so the Incident stays unsettled and watched.
        wait_until(
            lambda: (resources.incident("owed")["status"]["escalation"]["levels"][0]).get(
                "resolveAttempts"
            ),
            timeout=30,
            what="a first attempt at the resolved notice",
        )
        assert not resources.incident("owed")["status"].get("settled")
        assert _watched(port) == {"Resolved": 2.0, "Escalated": 1.0}

        # A person resolves the Escalated one: settled in that write, it leaves the watch.
        resources.patch_incident("escalated", {"resolve": True})
        escalated = resources.wait_phase("escalated", "Resolved", "Failed", timeout=30)
        assert escalated["status"]["phase"] == "Resolved", escalated["status"].get("message")
        assert escalated["status"].get("settled") is True
        wait_until(
            lambda: _watched(port) == {"Resolved": 2.0},
            timeout=30,
            what="the operator to let the resolved Escalated Incident go",
        )

        # Its policy now pages, in an hour: the tick leaves the settling of a Resolved
        # Incident to the escalation timer, which alone both pages and settles.
        resources.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            "mitigationpolicies",
            "restarts",
            {"spec": {"escalation": [{**_level(url)[0], "after": "1h"}]}},
        )
        with Responder(
            api_client, signals, namespace=namespace, name="web", health=lambda _: (0.0, 0.2)
        ):
            # Open: mitigated, Resolved with no notice owed, then settled by that timer.
            resources.create(incident_manifest("open", target="web"))
            opened = resources.wait_phase("open", "Resolved", "Escalated", "Failed", timeout=90)
            assert opened["status"]["phase"] == "Resolved", opened["status"].get("message")
            wait_until(
                lambda: resources.incident("open")["status"].get("settled") is True,
                timeout=30,
                what="the escalation timer to settle the Resolved Incident nobody was told of",
            )
            assert not received, "nobody was paged for it"
            wait_until(
                lambda: _watched(port) == {"Resolved": 2.0},
                timeout=30,
                what="the operator to let the settled Incident go",
            )
        left_open = resources.incident("open")

        # The receiver is back: the notice is delivered, then the Incident settles and leaves.
        paging["spec"]["escalation"] = _level(url)
        resources.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "mitigationpolicies", "paging", {"spec": paging["spec"]}
        )
        wait_until(
            lambda: resources.incident("owed")["status"].get("settled") is True,
            timeout=60,
            what="the resolved notice delivered and the Incident settled",
        )
        owed = resources.incident("owed")["status"]["escalation"]
        assert owed["levels"][0]["resolvedNotified"] is True and owed["resolvedNoticesDone"]
        assert received, "the resolved notice reached the receiver"
        wait_until(
            lambda: _watched(port) == {"Resolved": 1.0},
            timeout=30,
            what="the operator to let the Incident go once its notices were done",
        )

        # Fails while the operator runs: it leaves the watch (the gauge forgets it).
        resources.create(incident_manifest("lost", target="nowhere"))
        lost = resources.wait_phase("lost", "Failed", "Resolved", "Escalated")
        assert lost["status"]["phase"] == "Failed", lost["status"].get("message")
        wait_until(
            lambda: _watched(port) == {"Resolved": 1.0},
            timeout=30,
            what="the operator to watch the older build's Resolved Incident and no other",
        )
    finally:
        operator.terminate()
        operator.wait(timeout=30)
    # Neither deleted nor written to: those left out are as they were before the start, and
    # the one that settled was not written again after leaving the watch.
    for name, incident in before.items():
        assert (
            resources.incident(name)["metadata"]["resourceVersion"]
            == (incident["metadata"]["resourceVersion"])
        ), name
    assert (
        resources.incident("open")["metadata"]["resourceVersion"]
        == (left_open["metadata"]["resourceVersion"])
    )
    assert resources.incident("lost")["status"]["settled"] is True
