"""How fast one Incident becomes one write on its target, beside the floor and the runbook
(measurements 1 and 2), and what that costs the API server (measurement 6).

Every speed is timed the same way: from just before the triggering call (create the
Incident, post the alert, send the PATCH, start kubectl) to the moment this process's watch
receives the Deployment's new generation. The floor is one direct PATCH from a Python client;
the runbook is the guide's manual step done by a script with the built kubectl.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
import yaml
from kubernetes import client
from tests.support.bridge import alert, webhook
from tests.support.kube import PAUSE_IMAGE
from tests.support.objects import GROUP, VERSION

from benchmarks.conftest import OperatorFactory
from benchmarks.harness import (
    OWN_REQUESTS,
    ROOT,
    DeploymentWatch,
    Operator,
    by_verb_resource,
    create_deployments,
    create_incident,
    create_policy,
    custom,
    incident,
    phases,
    policy,
    record,
    request_counts,
    summary,
    verb_totals,
    wait_phases,
)
from localkube.processes import free_port, wait_until
from localkube.testing import ClusterAccess

pytestmark = pytest.mark.cluster

REPEATS = int(os.environ.get("MITIGATOR_BENCH_REPEATS", "12"))
COST_ROLLBACKS = 10
WAITERS = 20
WAIT_WINDOW = 20.0
VERIFIERS = 20
VERIFY_WINDOW = 12.0
STATUS_WRITE = "PATCH incidents.mitigator.luminamind.io/status"
TOKEN = "bench-bridge-token-0123456789abcdef"

# action type → the Incident's step, and the guide's manual runbook command for it
ACTIONS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "rollback": ({"rollback": {}}, ["rollout", "undo"]),
    "scale": ({"scale": {"replicas": 2}}, ["scale", "--replicas=2"]),
    "restart": ({"restart": {}}, ["rollout", "restart"]),
    "setEnv": (
        {"setEnv": {"env": {"DISABLE_WEB_SEARCH": "true"}}},
        ["set", "env", "DISABLE_WEB_SEARCH=true"],
    ),
}


@dataclass
class Reaction:
    namespace: str
    operator: Operator
    watch: DeploymentWatch
    bridge_port: int
    floor: list[float] = field(default_factory=list)


def _names() -> tuple[list[str], list[str]]:
    """The targets: those a rollback needs two revisions of, and the others."""
    twice, once = [], ["warm"]
    for kind in ACTIONS:
        group = twice if kind == "rollback" else once
        group += [f"op-{kind.lower()}-{i}" for i in range(REPEATS)]
        group += [f"rb-{kind.lower()}-{i}" for i in range(REPEATS)]
    once += [f"floor-{i}" for i in range(REPEATS)]
    once += [f"alert-{i}" for i in range(REPEATS)]
    twice += [f"cost-op-{i}" for i in range(COST_ROLLBACKS)]
    twice += [f"cost-fl-{i}" for i in range(COST_ROLLBACKS)]
    return twice, once


@pytest.fixture(scope="module")
def reaction(
    cluster: ClusterAccess,
    cluster_api: client.ApiClient,
    bench_namespace: str,
    start_operator: OperatorFactory,
) -> Iterator[Reaction]:
    namespace = bench_namespace
    create_policy(cluster_api, namespace, policy("bench", app_label="reaction"))
    started = time.monotonic()
    twice, once = _names()
    labels = {"bench": "reaction"}
    create_deployments(cluster_api, namespace, twice, labels=labels, second_revision=True)
    create_deployments(cluster_api, namespace, once, labels=labels)
    everything = [*twice, *once]
    print(f"\nreaction: {len(everything)} Deployments ready in {time.monotonic() - started:.0f} s")
    port = free_port()
    operator = start_operator(
        namespace,
        MITIGATOR_BRIDGE_PORT=str(port),
        MITIGATOR_BRIDGE_TOKEN=TOKEN,
    )
    with DeploymentWatch(cluster, namespace) as watch:
        watch.wait_seen(everything, timeout=60)
        # The operator is up when it has acted once (this also warms its caches and clients).
        before = watch.generation("warm")
        create_incident(cluster_api, namespace, incident("warm", "warm", [{"restart": {}}]))
        acted = watch.wait_generation("warm", before, timeout=120)
        assert acted is not None, operator.log_tail()
        yield Reaction(namespace, operator, watch, port)


def _timed(watch: DeploymentWatch, name: str, trigger: Any) -> float | None:
    before = watch.generation(name)
    started = time.monotonic()
    trigger()
    seen = watch.wait_generation(name, before, timeout=60)
    return None if seen is None else seen - started


def _kubectl(cluster: ClusterAccess, namespace: str, argv: list[str], name: str) -> None:
    # Each command names its Deployment where kubectl expects it: after the subcommand words.
    words = [w for w in argv if not w.startswith("-") and "=" not in w]
    rest = [w for w in argv if w not in words]
    subprocess.run(
        ["kubectl", "-n", namespace, *words, f"deployment/{name}", *rest],
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        check=True,
        capture_output=True,
    )


def test_time_to_first_action(
    cluster: ClusterAccess, cluster_api: client.ApiClient, reaction: Reaction
) -> None:
    apps = client.AppsV1Api(cluster_api)
    ns, watch = reaction.namespace, reaction.watch
    operator: dict[str, list[float]] = {kind: [] for kind in ACTIONS}
    runbook: dict[str, list[float]] = {kind: [] for kind in ACTIONS}
    floor: list[float] = []
    missed: Counter[str] = Counter()
    for i in range(REPEATS):
        # Interleaved, so that a drift of the machine's load touches every column alike.
        name = f"floor-{i}"
        patch = {"spec": {"template": {"metadata": {"annotations": {"bench/floor": str(i)}}}}}
        took = _timed(watch, name, partial(apps.patch_namespaced_deployment, name, ns, patch))
        floor.append(took) if took is not None else missed.update(["floor"])
        for kind, (step, argv) in ACTIONS.items():
            target = f"op-{kind.lower()}-{i}"
            body = incident(target, target, [step])
            took = _timed(watch, target, partial(create_incident, cluster_api, ns, body))
            operator[kind].append(took) if took is not None else missed.update([kind])
            manual = f"rb-{kind.lower()}-{i}"
            took = _timed(watch, manual, partial(_kubectl, cluster, ns, argv, manual))
            runbook[kind].append(took) if took is not None else missed.update([f"kubectl {kind}"])
    reaction.floor = floor
    floor_summary = summary(floor)
    rows = []
    for kind in ACTIONS:
        ours, manual = summary(operator[kind]), summary(runbook[kind])
        rows.append(
            {
                "action": kind,
                "operator": ours,
                "runbook": manual,
                "floor": floor_summary,
                "ratio_to_floor_median": _ratio(ours["median_ms"], floor_summary["median_ms"]),
                "ratio_to_floor_p95": _ratio(ours["p95_ms"], floor_summary["p95_ms"]),
                "ratio_to_runbook_median": _ratio(ours["median_ms"], manual["median_ms"]),
            }
        )
    record("time_to_first_action", rows=rows, missed=dict(missed), repeats=REPEATS)
    assert not missed, missed


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def test_alert_to_action(cluster_api: client.ApiClient, reaction: Reaction) -> None:
    """The operator's bridge receives Alertmanager's webhook → the first write on the
    target. Alertmanager's group_wait and the rule's `for:` come before the webhook and are
    configuration, reported apart (from manifests/)."""
    ns, watch = reaction.namespace, reaction.watch
    url = f"http://127.0.0.1:{reaction.bridge_port}/api/v1/alerts"
    took_all, answered = [], []
    for i in range(REPEATS):
        target = f"alert-{i}"
        payload = webhook(alert(ns, target, alertname="HighErrorRate", fingerprint=f"{i:016x}"))

        def post(payload: dict[str, Any] = payload) -> None:
            started = time.monotonic()
            request = urllib.request.Request(
                url,
                data=json.dumps(payload).encode(),
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200
            answered.append(time.monotonic() - started)

        took = _timed(watch, target, post)
        if took is not None:
            took_all.append(took)
    floor = summary(reaction.floor) if reaction.floor else None
    ours = summary(took_all)
    record(
        "alert_to_action",
        bridge_to_action=ours,
        bridge_answer=summary(answered),
        floor=floor,
        ratio_to_floor_median=_ratio(ours["median_ms"], floor["median_ms"] if floor else None),
        missed=REPEATS - len(took_all),
        configured=_configured_delays(),
    )
    assert len(took_all) == REPEATS


def _configured_delays() -> dict[str, Any]:
    """The waits before the webhook, as shipped: the bridge route's group_wait and each
    rule's `for:`."""
    route = yaml.safe_load((ROOT / "manifests" / "alertmanager-route.yaml").read_text())
    rules = yaml.safe_load((ROOT / "manifests" / "prometheus-rules.yaml").read_text())
    fors = {
        rule["alert"]: rule.get("for", "0s")
        for group in rules["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    return {"alertmanager_group_wait": _group_waits(route["route"]), "rule_for": fors}


def _group_waits(node: Any, path: str = "route") -> dict[str, str]:
    found: dict[str, str] = {}
    if isinstance(node, dict):
        if "group_wait" in node:
            where = node.get("receiver") or path
            found[str(where)] = str(node["group_wait"])
        for key, value in node.items():
            found.update(_group_waits(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.update(_group_waits(value, f"{path}[{i}]"))
    return found


def _window(cluster_api: client.ApiClient, action: Any, *, at_least: float) -> Counter[Any]:
    """What the API server counted while `action` ran (and at least `at_least` seconds),
    less the benchmark's own polling."""
    before = request_counts(cluster_api)
    own = OWN_REQUESTS.copy()
    started = time.monotonic()
    action()
    left = at_least - (time.monotonic() - started)
    if left > 0:
        time.sleep(left)
    after = request_counts(cluster_api)
    return (after - before) - (OWN_REQUESTS - own)


def test_api_cost(cluster_api: client.ApiClient, reaction: Reaction) -> None:
    """Requests per rollback, by verb and resource, from the API server's
    apiserver_request_total. The API server does not say which client sent a request, so the
    same rollback done by a direct PATCH (the controllers' reaction, kwok's, the leases) is
    measured over a window of the same length and subtracted."""
    ns = reaction.namespace
    apps = client.AppsV1Api(cluster_api)
    everything = list(phases(cluster_api, ns))
    wait_phases(cluster_api, ns, everything, timeout=180)  # nothing else in flight
    names = [f"cost-op-{i}" for i in range(COST_ROLLBACKS)]
    elapsed: list[float] = []

    def by_operator() -> None:
        started = time.monotonic()
        for name in names:
            create_incident(cluster_api, ns, incident(name, name, [{"rollback": {}}]))
        wait_phases(cluster_api, ns, names, timeout=180)
        elapsed.append(time.monotonic() - started)

    ours = _window(cluster_api, by_operator, at_least=15)
    window = max(15.0, elapsed[0])

    def by_hand() -> None:
        for i in range(COST_ROLLBACKS):
            apps.patch_namespaced_deployment(
                f"cost-fl-{i}",
                ns,
                {
                    "spec": {
                        "template": {
                            "spec": {"containers": [{"name": "app", "image": PAUSE_IMAGE}]}
                        }
                    }
                },
            )

    theirs = _window(cluster_api, by_hand, at_least=window)
    ours_by = by_verb_resource(ours)
    theirs_by = by_verb_resource(theirs)
    attributable: dict[str, float] = {}
    for key in sorted(set(ours_by) | set(theirs_by)):
        value = ours_by.get(key, 0) - theirs_by.get(key, 0)
        if key == "PATCH deployments.apps":
            value += COST_ROLLBACKS  # the rollback write itself is in both windows
        if key == "POST incidents.mitigator.luminamind.io":
            value -= COST_ROLLBACKS  # the user's create, not the operator's
        if value:
            attributable[key] = round(value / COST_ROLLBACKS, 2)
    outcome = phases(cluster_api, ns)
    record(
        "api_cost_rollback",
        rollbacks=COST_ROLLBACKS,
        window_s=round(window, 1),
        per_rollback=attributable,
        totals=verb_totals(attributable),
        raw_operator_window=ours_by,
        raw_baseline_window=theirs_by,
        resolved=sum(1 for n in names if outcome.get(n) == "Resolved"),
    )


def test_api_cost_of_a_waiting_incident(cluster_api: client.ApiClient, reaction: Reaction) -> None:
    """Incidents waiting for a slot (maxConcurrentMitigations reached): requests per tick
    each, over a window compared with the same window without them."""
    ns = reaction.namespace
    waiters = [f"wait-{i}" for i in range(WAITERS)]
    create_policy(
        cluster_api,
        ns,
        policy(
            "one-at-a-time",
            app_label="waiting",
            # Never healthy: the holder keeps its slot for the whole measurement.
            queries={"errorRate": "vector(1)", "p95Latency": "vector(0.05)"},
            guardrails={"maxConcurrentMitigations": 1},
        ),
    )
    create_deployments(cluster_api, ns, ["holder", *waiters], labels={"bench": "waiting"})
    create_incident(cluster_api, ns, incident("holder", "holder", [{"restart": {}}]))
    wait_phases(cluster_api, ns, ["holder"], ("Verifying",), timeout=60)
    quiet = _window(cluster_api, lambda: None, at_least=WAIT_WINDOW)
    for name in waiters:
        create_incident(cluster_api, ns, incident(name, name, [{"restart": {}}]))
    wait_phases(cluster_api, ns, waiters, ("Mitigating",), timeout=60)
    time.sleep(4)  # their first ticks (and status writes) are over
    waiting = _window(cluster_api, lambda: None, at_least=WAIT_WINDOW)
    tick = float(reaction.operator.env.get("MITIGATOR_TICK_SECONDS", "2"))
    ticks = WAITERS * WAIT_WINDOW / tick
    ours, base = by_verb_resource(waiting), by_verb_resource(quiet)
    per_tick = {
        key: round((ours.get(key, 0) - base.get(key, 0)) / ticks, 3)
        for key in sorted(set(ours) | set(base))
        if ours.get(key, 0) != base.get(key, 0)
    }
    record(
        "api_cost_waiting",
        waiting_incidents=WAITERS,
        window_s=WAIT_WINDOW,
        tick_s=tick,
        per_waiting_tick=per_tick,
        total_per_waiting_tick=round(sum(per_tick.values()), 3),
        raw_waiting_window=ours,
        raw_quiet_window=base,
    )


def _windows_open(cluster_api: client.ApiClient, namespace: str, names: list[str]) -> bool:
    """Every one of `names` is Verifying with its verification window open."""
    OWN_REQUESTS[("LIST", "incidents.mitigator.luminamind.io", "200")] += 1
    listed = custom(cluster_api).list_namespaced_custom_object(
        GROUP, VERSION, namespace, "incidents"
    )
    opened = {
        item["metadata"]["name"]
        for item in listed["items"]
        if (item.get("status") or {}).get("phase") == "Verifying"
        and ((item["status"].get("verification") or {}).get("windowStartedAt"))
    }
    return opened >= set(names)


def test_api_cost_of_a_verifying_incident(
    cluster_api: client.ApiClient, reaction: Reaction
) -> None:
    """Incidents in their verification window, every check passing and the observed p95
    moving from tick to tick as a live service's does, the window (4 min) far longer than the
    measurement: requests and status writes per tick each, over a window compared with the
    same window without them."""
    ns = reaction.namespace
    names = [f"verify-{i}" for i in range(VERIFIERS)]
    create_policy(
        cluster_api,
        ns,
        policy(
            "long-window",
            app_label="verifying",
            window="4m",
            queries={"errorRate": "vector(0)", "p95Latency": "vector(0.05 + (time() % 10) / 1000)"},
        ),
    )
    create_deployments(cluster_api, ns, names, labels={"bench": "verifying"})
    started = time.monotonic()
    quiet = _window(cluster_api, lambda: None, at_least=VERIFY_WINDOW)
    quiet_s = time.monotonic() - started
    for name in names:
        create_incident(cluster_api, ns, incident(name, name, [{"restart": {}}]))
    wait_until(
        partial(_windows_open, cluster_api, ns, names),
        timeout=90,
        what=f"{VERIFIERS} verification windows to open",
        interval=1,
    )
    tick = float(reaction.operator.env.get("MITIGATOR_TICK_SECONDS", "2"))
    time.sleep(2 * tick)  # the ticks that opened the windows (and their writes) are over
    started = time.monotonic()
    verifying = _window(cluster_api, lambda: None, at_least=VERIFY_WINDOW)
    # As long as it took: the API server's counters were read at its two ends.
    elapsed = time.monotonic() - started
    still = phases(cluster_api, ns)
    ticks = VERIFIERS * elapsed / tick
    ours, base = by_verb_resource(verifying), by_verb_resource(quiet)
    scale = elapsed / quiet_s  # the quiet window's counts over as long a time
    per_tick = {
        key: round((ours.get(key, 0) - base.get(key, 0) * scale) / ticks, 3)
        for key in sorted(set(ours) | set(base))
        if ours.get(key, 0) != base.get(key, 0)
    }
    refresh = float(reaction.operator.env.get("MITIGATOR_VERIFICATION_REFRESH_SECONDS", "30"))
    record(
        "api_cost_verifying",
        verifying_incidents=VERIFIERS,
        window_s=round(elapsed, 1),
        tick_s=tick,
        refresh_s=refresh,
        status_writes_per_tick=per_tick.get(STATUS_WRITE, 0.0),
        per_verifying_tick=per_tick,
        total_per_verifying_tick=round(sum(per_tick.values()), 3),
        still_verifying=sum(1 for n in names if still.get(n) == "Verifying"),
        raw_verifying_window=ours,
        raw_quiet_window=base,
    )
