"""Incidents carry no finalizer: deleting one is never held by the operator (nor by its
absence, as at uninstall), and a deleted Incident's timers stop with its DELETED event, so
the operator takes no further step for it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kubernetes import client, watch

from localkube.processes import wait_until
from tests.support.kube import GOOD, deployment_manifest, wait_rollout
from tests.support.objects import GROUP, VERSION, Resources, incident_manifest, policy_manifest
from tests.support.responder import Responder

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator")]

FAILING = (0.25, 0.3)
OLD_FINALIZER = f"{GROUP}/finalizer"  # what earlier versions put on every Incident
LADDER = [{"restart": {}}, {"scale": {"increment": 1}}]


class IncidentFinalizers:
    """Every finalizer list any watch event showed for the namespace's Incidents, from a
    watch started (and confirmed running) before the test creates anything."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.seen: dict[str, list[list[str]]] = {}
        self._watch = watch.Watch()
        self._started = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> IncidentFinalizers:
        self._thread.start()
        wait_until(self._started.is_set, timeout=15, what="the Incident watch to start")
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping.set()
        self._watch.stop()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        listed = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "incidents"
        )
        self._started.set()
        try:
            for event in self._watch.stream(
                self.custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                "incidents",
                resource_version=listed["metadata"]["resourceVersion"],
            ):
                meta = event["object"]["metadata"]
                self.seen.setdefault(meta["name"], []).append(list(meta.get("finalizers") or []))
        except Exception:
            if not self._stopping.is_set():
                raise  # a watch broken mid-test fails the thread loudly; at the end it is ours


class TimerRuns(logging.Handler):
    """The in-process operator's "Timer 'tick' ..." lines, per Incident name: kopf logs one
    when a tick ends, and runs an object's ticks one after another."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.counts: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        ref = getattr(record, "k8s_ref", None) or {}
        if record.getMessage().startswith("Timer 'tick'") and ref.get("name"):
            self.counts[ref["name"]] = self.counts.get(ref["name"], 0) + 1


@contextmanager
def timer_runs() -> Iterator[TimerRuns]:
    handler = TimerRuns()
    logging.getLogger("kopf.objects").addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger("kopf.objects").removeHandler(handler)


def _deploy(apps: client.AppsV1Api, namespace: str, name: str) -> None:
    apps.create_namespaced_deployment(namespace, deployment_manifest(name, image=GOOD))
    wait_rollout(apps, namespace, name)


def _gone(custom: client.CustomObjectsApi, namespace: str, name: str) -> bool:
    try:
        custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "incidents", name)
    except client.ApiException as exc:
        return exc.status == 404
    return False


def test_an_incident_never_carries_a_finalizer_and_an_old_one_is_released(
    api_client: client.ApiClient, namespace: str, signals: Any
) -> None:
    apps = client.AppsV1Api(api_client)
    resources = Resources(api_client, namespace)
    _deploy(apps, namespace, "web")
    resources.create(
        policy_manifest(
            "restarts", app="web", rules=[{"name": "any", "actions": [{"restart": {}}]}]
        )
    )
    with IncidentFinalizers(api_client, namespace) as finalizers:
        with Responder(
            api_client, signals, namespace=namespace, name="web", health=lambda _: (0.0, 0.2)
        ):
            resources.create(incident_manifest("leak", target="web"))
            assert (
                resources.wait_phase("leak", "Resolved", "Escalated", "Failed")["status"]["phase"]
                == "Resolved"
            )
        # An Incident an earlier version left with its finalizer: released, not kept.
        old = incident_manifest("from-before", target="web", dryRun=True)
        old["metadata"]["finalizers"] = [OLD_FINALIZER]
        resources.create(old)
        wait_until(
            lambda: not resources.incident("from-before")["metadata"].get("finalizers"),
            timeout=30,
            what="the operator to take the old finalizer off",
        )
        wait_until(
            lambda: len(finalizers.seen.get("leak", [])) >= 3,
            timeout=15,
            what="the watch to see the Incident's writes",
        )
    assert finalizers.seen["leak"] and all(f == [] for f in finalizers.seen["leak"]), (
        finalizers.seen["leak"]
    )
    resources.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "incidents", "leak")
    assert _gone(resources.custom, namespace, "leak")  # at once: nothing holds it


def test_a_deleted_incident_takes_no_further_step(
    api_client: client.ApiClient, namespace: str, signals: Any
) -> None:
    """Two Incidents on the same two-step ladder, verification failing throughout. The first
    is deleted in its first step's verification: at most the tick running at that moment
    ends after it (kopf runs an object's ticks one at a time), and none starts. The second,
    created after the deletion, reaching its second step (a verification timeout later) is
    the witness that the first would have ticked many times, and taken its step, by then."""
    apps = client.AppsV1Api(api_client)
    resources = Resources(api_client, namespace)
    for name in ("web", "api"):
        _deploy(apps, namespace, name)
        resources.create(
            policy_manifest(
                f"ladder-{name}", app=name, rules=[{"name": "any", "actions": LADDER}], timeout="4s"
            )
        )
    with (
        Responder(api_client, signals, namespace=namespace, name="web", health=lambda _: FAILING),
        Responder(api_client, signals, namespace=namespace, name="api", health=lambda _: FAILING),
        timer_runs() as ticks,
    ):
        resources.create(incident_manifest("first", target="web"))
        first = resources.wait_phase("first", "Verifying", "Resolved", "Escalated", "Failed")
        assert first["status"]["phase"] == "Verifying", first["status"].get("message")
        assert [a["state"] for a in first["status"]["actions"]] == ["Applied", "Pending"]
        resources.custom.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, "incidents", "first"
        )
        wait_until(lambda: _gone(resources.custom, namespace, "first"), timeout=15, what="gone")
        ticks_when_gone = ticks.counts.get("first", 0)

        resources.create(incident_manifest("second", target="api"))

        def second_step_applied() -> bool:
            actions = (resources.incident("second").get("status") or {}).get("actions") or []
            return [a.get("state") for a in actions] == ["Applied", "Applied"]

        wait_until(second_step_applied, timeout=90, what="the second Incident's second step")
    assert ticks_when_gone > 0  # the handler saw the first Incident's ticks while it lived
    assert ticks.counts["first"] - ticks_when_gone <= 1, ticks.counts
    assert apps.read_namespaced_deployment("api", namespace).spec.replicas == 3
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 2
