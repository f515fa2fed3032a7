"""Prometheus down (connections refused) or slow (answering after the query timeout), during
classification and during verification (issue 13, point 4): recorded as unknown, never
Resolved on missing data; once it answers again, verification resumes at the next tick.

Each policy reads the session's real Prometheus through a proxy of its own
(``tests.support.faults.FlakyProxy``) that the test switches between up, down and slow."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from localkube.monitoring import Prometheus
from tests.support.faults import FlakyProxy, OperatorProcess, TargetWrites
from tests.support.kube import BAD, deploy_good_then_bad
from tests.support.objects import Resources, incident_manifest, policy_manifest
from tests.support.responder import Responder, image

pytestmark = pytest.mark.cluster

HEALTHY, FAILING = (0.0, 0.2), (0.3, 0.2)
FAULTS = ("down", "slow")
FAULT_SECONDS = 8.0  # longer than the verification window: missing data must not pass it
# What "within one tick" may take here: the tick (0.5 s), a query already waiting on the slow
# Prometheus (3 s timeout, two signals), and a loaded 2-core machine.
RESUME_BOUND_SECONDS = 12.0


@pytest.fixture
def proxies(prometheus: Prometheus) -> Iterator[dict[str, FlakyProxy]]:
    made = {fault: FlakyProxy(prometheus.port, delay=30) for fault in FAULTS}
    yield made
    for proxy in made.values():
        proxy.close()


def _health(dep: dict[str, Any]) -> tuple[float, float]:
    return FAILING if image(dep) == BAD else HEALTHY


def _setup(
    apps: client.AppsV1Api, resources: Resources, namespace: str, proxies: dict[str, FlakyProxy]
) -> None:
    for fault, proxy in proxies.items():
        deploy_good_then_bad(apps, namespace, fault)
        resources.create(
            policy_manifest(
                fault,
                app=fault,
                prometheus_url=proxy.url,
                # Acts on evidence only (a rule without `when` would act on Unknown too).
                rules=[
                    {
                        "name": "evidence",
                        "when": {"severities": ["P0", "P1"]},
                        "actions": [{"rollback": {}}],
                    }
                ],
                window="3s",
                timeout="60s",
            )
        )


def test_prometheus_down_or_slow_at_classification_is_unknown_and_nothing_is_done(
    *,
    fault_api: client.ApiClient,
    fault_apps: client.AppsV1Api,
    fault_namespace: str,
    fault_operator: OperatorProcess,
    proxies: dict[str, FlakyProxy],
    signals: Any,
) -> None:
    namespace, apps = fault_namespace, fault_apps
    resources = Resources(fault_api, namespace)
    _setup(apps, resources, namespace, proxies)
    for fault, proxy in proxies.items():
        proxy.set(fault)
    with (
        TargetWrites(apps, namespace, "down") as down_writes,
        TargetWrites(apps, namespace, "slow") as slow_writes,
    ):
        fault_operator.start()
        for fault in FAULTS:
            resources.create(incident_manifest(fault, target=fault))
        done = {
            fault: resources.wait_phase(fault, "Resolved", "Escalated", "Failed", timeout=90)
            for fault in FAULTS
        }
    for fault, writes in (("down", down_writes), ("slow", slow_writes)):
        status = done[fault]["status"]
        classification = status["classification"]
        assert classification["severity"] == "Unknown", (fault, classification)
        assert classification["evidenceComplete"] is False
        assert status["phase"] == "Escalated", (fault, status.get("message"))
        assert len(writes.templates()) == 1, f"{fault}: nothing may change on missing data"
    down_reasons = " ".join(done["down"]["status"]["classification"]["reasons"])
    assert "unreachable" in down_reasons, down_reasons


def test_prometheus_down_or_slow_during_verification_never_resolves_and_resumes_after(
    *,
    fault_api: client.ApiClient,
    fault_apps: client.AppsV1Api,
    fault_namespace: str,
    fault_operator: OperatorProcess,
    proxies: dict[str, FlakyProxy],
    signals: Any,
) -> None:
    namespace, apps = fault_namespace, fault_apps
    resources = Resources(fault_api, namespace)
    _setup(apps, resources, namespace, proxies)
    unknown_seen: dict[str, list[str]] = {fault: [] for fault in FAULTS}
    # The tick time (`verification.at`) of the last check seen recording the missing data.
    last_unknown_at: dict[str, datetime] = {}
    # The service recovers only once Prometheus is taken away: before that the checks fail on
    # the data, so verification cannot pass its window (and resolve) in the moment between
    # this test seeing Verifying and its switch of the proxies, however loaded the machine.
    faulted = threading.Event()

    def health(dep: dict[str, Any]) -> tuple[float, float]:
        return _health(dep) if faulted.is_set() else FAILING

    with (
        Responder(fault_api, signals, namespace=namespace, name="down", health=health),
        Responder(fault_api, signals, namespace=namespace, name="slow", health=health),
    ):
        fault_operator.start()
        for fault in FAULTS:
            resources.create(incident_manifest(fault, target=fault))
        for fault in FAULTS:
            resources.wait_phase(fault, "Verifying", "Resolved", "Escalated", "Failed")
        for fault, proxy in proxies.items():
            proxy.set(fault)
        faulted.set()
        # At least FAULT_SECONDS, and until each verification recorded the missing data (a
        # tick against the slow Prometheus takes its query timeouts before it writes).
        started = time.monotonic()
        while time.monotonic() - started < FAULT_SECONDS or not all(unknown_seen.values()):
            assert time.monotonic() - started < 60, f"no unknown recorded: {unknown_seen}"
            for fault in FAULTS:
                status = resources.incident(fault)["status"]
                assert status["phase"] == "Verifying", (fault, status.get("message"))
                verification = status.get("verification") or {}
                for check in verification.get("checks") or []:
                    if "unknown" in (check.get("message") or ""):
                        assert check["passed"] is False
                        unknown_seen[fault].append(check["message"])
                        last_unknown_at[fault] = datetime.fromisoformat(verification["at"])
            time.sleep(0.3)
        # Taken before the switch: a tick that starts now may query the answering Prometheus.
        back = datetime.now(UTC)
        for proxy in proxies.values():
            proxy.set("up")
        done = {
            fault: resources.wait_phase(fault, "Resolved", "Escalated", "Failed", timeout=60)
            for fault in FAULTS
        }
    for fault in FAULTS:
        status = done[fault]["status"]
        assert unknown_seen[fault], f"{fault}: verification never recorded the missing data"
        assert status["phase"] == "Resolved", (fault, status.get("message"))
        passing_since = datetime.fromisoformat(status["verification"]["passingSince"])
        # The passing window holds no tick that lacked the data...
        assert passing_since > last_unknown_at[fault], (fault, passing_since, last_unknown_at)
        # ...and began within a tick of Prometheus answering again. `passingSince` is the
        # tick's start, taken before its queries, so a tick that started just before the
        # switch and queried just after it counts from its start (a few ms before `back`).
        resumed = (passing_since - back).total_seconds()
        print(f"Prometheus {fault}: verification passing again {resumed:.1f}s after it returned")
        assert resumed < RESUME_BOUND_SECONDS, (fault, resumed)
