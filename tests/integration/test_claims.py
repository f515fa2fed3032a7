"""One mitigation per target, decided on the API server; the concurrency limit served in
turns. Real control plane, real Prometheus, the operator in-process (and, for incidents that
exist before it starts, as its own process under its shipped RBAC)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from localkube.processes import wait_until
from mitigator import ACTIONS_ANNOTATION, CLAIM_ANNOTATION
from tests.support.kube import deployment_manifest, wait_rollout
from tests.support.objects import GROUP, VERSION, Resources, incident_manifest, policy_manifest
from tests.support.world import start_operator

pytestmark = pytest.mark.cluster

DONE = ("Resolved", "Escalated", "Failed", "Suppressed")


def _policy(*, window: str, limit: int) -> dict[str, Any]:
    manifest = policy_manifest(
        "claims",
        app="unused",
        rules=[{"name": "restart", "actions": [{"restart": {}}]}],
        guardrails={"maxConcurrentMitigations": limit},
        window=window,
        timeout="10m",
    )
    manifest["spec"]["selector"] = {"matchLabels": {"tier": "claims"}}
    return manifest


def _targets(api_client: client.ApiClient, signals: Any, namespace: str, count: int) -> list[str]:
    """Healthy Deployments (P3: the policy's rule acts on any severity) with their signals
    scraped, so every decision rests on real evidence."""
    apps = client.AppsV1Api(api_client)
    names = [f"web-{n}" for n in range(count)]
    for name in names:
        manifest = deployment_manifest(name, replicas=1, labels={"tier": "claims"})
        apps.create_namespaced_deployment(namespace, manifest)
        signals.set(namespace, name, error_ratio=0.0, p95_seconds=0.2)
    for name in names:
        wait_rollout(apps, namespace, name)
        signals.wait_scraped(namespace, name)
    return names


def _records(api_client: client.ApiClient, namespace: str, name: str) -> list[dict[str, Any]]:
    deployment = client.AppsV1Api(api_client).read_namespaced_deployment(name, namespace)
    annotations = deployment.metadata.annotations or {}
    return list(json.loads(annotations.get(ACTIONS_ANNOTATION, "[]")))


def _revision(api_client: client.ApiClient, namespace: str, name: str) -> str:
    deployment = client.AppsV1Api(api_client).read_namespaced_deployment(name, namespace)
    return str(deployment.metadata.annotations["deployment.kubernetes.io/revision"])


def _race(
    api_client: client.ApiClient, resources: Resources, namespace: str, targets: list[str]
) -> None:
    """Both Incidents of each pair hold on to Verifying (a long window) until every loser is
    settled; then a person resolves the winners, which gives their claims up."""
    winners: list[str] = []
    for target in targets:
        pair = [f"{target}-a", f"{target}-b"]
        incidents = {
            name: resources.wait_phase(name, "Verifying", *DONE, timeout=90) for name in pair
        }
        phases = sorted(i["status"]["phase"] for i in incidents.values())
        assert phases == ["Suppressed", "Verifying"], {
            n: (i["status"]["phase"], i["status"].get("message")) for n, i in incidents.items()
        }
        [winner] = [n for n, i in incidents.items() if i["status"]["phase"] == "Verifying"]
        [loser] = [i for n, i in incidents.items() if n != winner]
        assert loser["status"]["attachedTo"] == winner
        assert winner in loser["status"]["message"]
        records = _records(api_client, namespace, target)
        assert len(records) == 1 and records[0]["type"] == "restart", records
        # One write, one new revision (the Deployment controller numbers it a moment later).
        wait_until(
            lambda target=target: _revision(api_client, namespace, target) == "2",
            timeout=30,
            what=f"revision 2 of {target}",
        )
        winners.append(winner)
    for winner in winners:
        resources.patch_incident(winner, {"resolve": True})
    for winner, target in zip(winners, targets, strict=True):
        assert resources.wait_phase(winner, *DONE)["status"]["phase"] == "Resolved"
        wait_until(
            lambda target=target: (
                CLAIM_ANNOTATION
                not in (
                    client.AppsV1Api(api_client)
                    .read_namespaced_deployment(target, namespace)
                    .metadata.annotations
                    or {}
                )
            ),
            timeout=30,
            what=f"the claim on {target} to be given up",
        )
        assert len(_records(api_client, namespace, target)) == 1
        assert _revision(api_client, namespace, target) == "2"


@pytest.mark.usefixtures("operator")
def test_two_incidents_for_one_deployment_make_one_write_twenty_times_over(
    api_client: client.ApiClient, namespace: str, signals: Any
) -> None:
    resources = Resources(api_client, namespace)
    targets = _targets(api_client, signals, namespace, 20)
    resources.create(_policy(window="10m", limit=100))
    for target in targets:  # the two of a pair back to back: their first ticks race
        resources.create(incident_manifest(f"{target}-a", target=target))
        resources.create(incident_manifest(f"{target}-b", target=target))
    _race(api_client, resources, namespace, targets)


def test_two_incidents_that_exist_before_the_operator_starts_make_one_write(  # noqa: PLR0917
    api_client: client.ApiClient,
    own_namespace: str,
    signals: Any,
    prometheus: Any,
    operator_kubeconfig: Path,
    tmp_path: Path,
) -> None:
    namespace = own_namespace
    resources = Resources(api_client, namespace)
    targets = _targets(api_client, signals, namespace, 3)
    resources.create(_policy(window="10m", limit=100))
    for target in targets:
        resources.create(incident_manifest(f"{target}-a", target=target))
        resources.create(incident_manifest(f"{target}-b", target=target))
    operator = start_operator(operator_kubeconfig, prometheus, namespace, tmp_path / "op.log")
    try:
        _race(api_client, resources, namespace, targets)
    finally:
        operator.terminate()
        operator.wait(timeout=30)
    assert "forbidden" not in (tmp_path / "op.log").read_text().lower()


@pytest.mark.usefixtures("operator")
def test_more_incidents_than_the_limit_are_served_in_turns(
    api_client: client.ApiClient, namespace: str, signals: Any
) -> None:
    resources = Resources(api_client, namespace)
    targets = _targets(api_client, signals, namespace, 10)
    resources.create(_policy(window="2s", limit=3))
    with _Holders(api_client, namespace) as holders:
        for target in targets:
            resources.create(incident_manifest(target, target=target))
        statuses = [resources.wait_phase(t, *DONE, timeout=180)["status"] for t in targets]
    assert [s["phase"] for s in statuses] == ["Resolved"] * 10, [s.get("message") for s in statuses]
    # Each held a slot from its first action to its resolution: never more than 3 at once, in
    # the order the API server stored the Incidents' states. (Not from mitigatedAt and
    # resolvedAt: each is its tick's start, taken before the tick asked for its slot, so two
    # ticks that overlap can stamp spans that overlap when the slots did not.)
    assert holders.most <= 3, holders.history
    assert all(len(_records(api_client, namespace, t)) == 1 for t in targets)


class _Holders:
    """How many Incidents hold a slot (an action applied, not finished) after each write of an
    Incident, from a watch: the API server's own order of the writes."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.holding: set[str] = set()
        self.history: list[tuple[str, int]] = []
        self.most = 0
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Holders:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        assert self.error is None, f"the watch of Incidents broke: {self.error!r}"

    def _see(self, item: dict[str, Any]) -> None:
        status = item.get("status") or {}
        name = item["metadata"]["name"]
        applied = any(a.get("state") == "Applied" for a in status.get("actions") or [])
        if applied and status.get("phase") not in DONE:
            self.holding.add(name)
        else:
            self.holding.discard(name)
        self.history.append((name, len(self.holding)))
        self.most = max(self.most, len(self.holding))

    def _run(self) -> None:
        version: str | None = None
        while not self._stop.is_set():
            try:
                for event in watch.Watch().stream(
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    "incidents",
                    resource_version=version,
                    timeout_seconds=5,
                ):
                    item = event["object"]
                    version = item["metadata"]["resourceVersion"]
                    self._see(item)
                    if self._stop.is_set():
                        return
            except Exception as exc:  # a gap in the history would make its count meaningless
                self.error = exc
                return
