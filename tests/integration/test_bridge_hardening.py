"""The bridge among hostile or odd alerts, against the real API server: the control plane's
namespaces refused, what an Incident stores capped and the rest counted on it, an Incident
the API server will not store answered 413 (never a 5xx that Alertmanager retries forever),
what a sender wrote clipped in answers and logs, pods followed to their Deployment,
Alertmanager's truncatedAlerts recorded and counted, and alerts attached to their target's
open Incident instead of a second one."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.processes import wait_until
from localkube.testing import TEST_NAMESPACE_LABEL, ClusterAccess, new_namespace_name
from mitigator.bridge.grouping import map_payload
from mitigator.bridge.identity import group_hash, incident_name
from mitigator.bridge.limits import ANNOTATION_DROPPED
from mitigator.bridge.payload import parse_payload
from mitigator.domain.guardrails import ALWAYS_PROTECTED_NAMESPACES
from tests.support.bridge import (
    EPOCH,
    TOKEN,
    RunningBridge,
    alert,
    bridge_settings,
    kube_for,
    list_incidents,
    only_incident,
    recorded,
    stamp,
    webhook,
)
from tests.support.kube import deployment_manifest
from tests.support.objects import GROUP, VERSION

pytestmark = pytest.mark.cluster


# ----------------------------------------------------------------- fixtures


@pytest.fixture
def quiet(api_client: client.ApiClient) -> Iterator[str]:
    """A namespace no operator watches (the session's watches mt-*): the tests play the
    operator's part, setting phases themselves."""
    core = client.CoreV1Api(api_client)
    name = new_namespace_name("bh")
    meta = client.V1ObjectMeta(name=name, labels={TEST_NAMESPACE_LABEL: "true"})
    core.create_namespace(client.V1Namespace(metadata=meta))
    wait_until(
        lambda: core.read_namespaced_service_account("default", name),
        timeout=30,
        what=f"default ServiceAccount in {name}",
    )
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="module")
def bridge_server(cluster: ClusterAccess, crds: None) -> Iterator[RunningBridge]:
    """A bridge with the default settings: any namespace but the protected ones."""
    with RunningBridge(kube_for(cluster), bridge_settings()) as running:
        yield running


def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


def create_incident(api_client: client.ApiClient, namespace: str, name: str, **spec: Any) -> None:
    """An Incident as a person applies it."""
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Incident",
        "metadata": {"name": name},
        "spec": {"target": {"name": "web"}, "title": "by hand", **spec},
    }
    custom(api_client).create_namespaced_custom_object(GROUP, VERSION, namespace, "incidents", body)


def set_phase(api_client: client.ApiClient, namespace: str, name: str, phase: str) -> None:
    custom(api_client).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "incidents", name, {"status": {"phase": phase}}
    )


def dropped(incident: dict[str, Any]) -> list[dict[str, Any]]:
    """The counts of what the bridge left out, as recorded on the Incident."""
    annotations = incident["metadata"].get("annotations") or {}
    return list(json.loads(annotations.get(ANNOTATION_DROPPED, "[]")))


# ----------------------------------------------------------------- 1. protected namespaces


def test_the_control_plane_namespaces_are_refused_by_default(
    bridge_server: RunningBridge, api_client: client.ApiClient
) -> None:
    protected = sorted(ALWAYS_PROTECTED_NAMESPACES)
    before = [len(list_incidents(api_client, ns)) for ns in protected]
    status, body = bridge_server.post(webhook(*(alert(ns, "coredns") for ns in protected)))

    assert status == 422, body
    assert body["error"] == "protected_namespace"
    assert body["incidents"] == []
    assert [(n["namespace"], n["reason"]) for n in body["rejected"]] == [
        (ns, "protected_namespace") for ns in protected
    ]
    assert all("always protected" in n["message"] for n in body["rejected"])
    assert [len(list_incidents(api_client, ns)) for ns in protected] == before
    metric = {"reason": "protected_namespace"}
    assert bridge_server.metric("mitigator_bridge_alerts_rejected_total", metric) >= 3


def test_the_setting_protects_more_and_the_rest_of_the_group_goes_ahead(
    cluster: ClusterAccess, crds: None, api_client: client.ApiClient, quiet: str, namespace: str
) -> None:
    config = bridge_settings(protected_namespaces=(quiet,), namespaces=("*",))
    with RunningBridge(kube_for(cluster), config) as running:
        refused = running.post(webhook(alert(quiet)))
        mixed = running.post(webhook(alert(quiet, fingerprint="1" * 16), alert(namespace)))

    assert refused[0] == 422 and refused[1]["error"] == "protected_namespace"
    assert "MITIGATOR_BRIDGE_PROTECTED_NAMESPACES" in refused[1]["message"]
    status, body = mixed
    assert status == 200
    assert [n["fingerprint"] for n in body["rejected"]] == ["1" * 16]
    assert list_incidents(api_client, quiet) == []
    assert len(list_incidents(api_client, namespace)) == 1


# ----------------------------------------------------------------- 2. caps


def test_beyond_the_caps_nothing_is_stored_and_everything_is_counted(
    cluster: ClusterAccess, crds: None, api_client: client.ApiClient, quiet: str
) -> None:
    config = bridge_settings(
        max_alerts_per_incident=5,
        max_labels_per_alert=8,
        max_label_name_bytes=32,
        max_label_value_bytes=64,
    )
    extra = {f"extra{i:02d}": "x" for i in range(10)} | {"big": "y" * 65, "n" * 33: "z"}
    alerts = [
        alert(quiet, fingerprint=f"{i:016x}", starts_at=EPOCH + timedelta(minutes=i), labels=extra)
        for i in range(8)
    ]
    payload = webhook(*alerts)
    with RunningBridge(kube_for(cluster), config) as running:
        status, body = running.post(payload)
        again = running.post(payload)
        labels_dropped = running.metric("mitigator_bridge_labels_dropped_total")
        alerts_dropped = running.metric("mitigator_bridge_alerts_dropped_total")

    assert status == 200, body
    assert (body["incidents"][0]["alerts"], body["incidents"][0]["recorded"]) == (8, 5)
    incident = only_incident(api_client, quiet)
    stored = incident["spec"]["source"]["alerts"]
    assert len(stored) == 5
    for item in stored:
        assert len(item["labels"]) == 8
        # The labels naming the target and the alert are kept first; oversized ones never.
        assert {"alertname", "namespace", "deployment", "severity"} <= set(item["labels"])
        assert "big" not in item["labels"] and "n" * 33 not in item["labels"]
    assert len(incident["spec"]["source"]["labels"]) == 8
    # 16 labels each (4 + 10 + 2 oversized), 8 stored: 8 left out of each recorded alert.
    group = incident["metadata"]["labels"]["mitigator.luminamind.io/alert-group"]
    assert dropped(incident) == [{"group": group, "alerts": 3, "labels": 40, "truncatedAlerts": 0}]
    # A resend finds the same counts: nothing is written again.
    assert again[1]["incidents"][0]["result"] == "unchanged"
    assert only_incident(api_client, quiet)["metadata"]["generation"] == 1
    assert (labels_dropped, alerts_dropped) == (2 * 8 * 8, 2 * 3)


def test_at_the_default_caps_the_largest_incident_fits(
    bridge_server: RunningBridge, api_client: client.ApiClient, quiet: str
) -> None:
    """100 alerts, each with more labels than it may store, every stored one of the largest
    size allowed: the Incident is written (no 413), and stays under etcd's limit."""
    key = f'{{}}:{{namespace="{quiet}"}}'
    padded = {f"{i:02d}" + "n" * 62: f"{i:02d}" + "v" * 254 for i in range(40)}  # 64- and 256-byte
    halves = []
    for half in range(2):
        items = [alert(quiet, fingerprint=f"{half}{i:015x}", labels=padded) for i in range(50)]
        halves.append(bridge_server.post(webhook(*items, group_key=key)))

    assert [status for status, _ in halves] == [200, 200], halves[1][1].get("message")
    assert [body["incidents"][0]["result"] for _, body in halves] == ["created", "updated"]
    incident = only_incident(api_client, quiet)
    assert len(incident["spec"]["source"]["alerts"]) == 100
    assert all(len(a["labels"]) == 32 for a in incident["spec"]["source"]["alerts"])
    # As stored, with the managedFields that repeat every label's name: etcd refuses about
    # 1.5 MiB, and the operator's status needs room too.
    size = len(json.dumps(incident, separators=(",", ":")))
    assert 1_000_000 < size < 1_300_000, size
    # 44 labels each (4 + 40), 32 stored: 12 left out of each of the second half's 50.
    [entry] = dropped(incident)
    assert (entry["alerts"], entry["labels"]) == (0, 50 * 12)


# ----------------------------------------------------------------- 3. too large


def big_payload(
    namespace: str, *, alerts: int, labels: int, size: int, half: int = 0
) -> dict[str, Any]:
    """Alerts whose labels make an Incident of about alerts × labels × size bytes (values
    differ per alert, so that the group's common labels stay small)."""
    items = []
    for i in range(alerts):
        extra = {f"pad{j:02d}": f"{half}{i:04d}{j:02d}" + "x" * (size - 7) for j in range(labels)}
        items.append(alert(namespace, fingerprint=f"{half}{i:015x}", labels=extra))
    return webhook(*items, group_key=f'{{}}:{{namespace="{namespace}",big="yes"}}')


def roomy(**overrides: Any) -> Any:
    """Caps raised far enough to let an Incident outgrow what the API server stores."""
    return bridge_settings(max_labels_per_alert=64, max_label_value_bytes=8192, **overrides)


@pytest.mark.parametrize(
    ("size", "api_status", "api_says"),
    [
        (1650, 500, "etcdserver: request is too large"),  # ~1.7 MB: etcd's 1.5 MiB
        (2450, 500, "ResourceExhausted"),  # ~2.5 MB: the gRPC client's 2 MiB
        (3400, 413, "Request entity too large"),  # ~3.4 MB: the API server's 3 MiB
    ],
    ids=["etcd", "grpc", "apiserver"],
)
def test_an_incident_the_api_server_will_not_store_is_a_413(
    *,
    cluster: ClusterAccess,
    crds: None,
    api_client: client.ApiClient,
    quiet: str,
    size: int,
    api_status: int,
    api_says: str,
) -> None:
    payload = big_payload(quiet, alerts=100, labels=10, size=size)
    # First, what the real API server answers to such an Incident.
    settings = roomy()
    raw = json.dumps(payload).encode()
    [target] = map_payload(parse_payload(raw), settings.rules, settings.limits).targets
    with pytest.raises(ApiException) as refused:
        custom(api_client).create_namespaced_custom_object(
            GROUP, VERSION, quiet, "incidents", target.body()
        )
    assert refused.value.status == api_status
    assert api_says in str(refused.value.body)

    with RunningBridge(kube_for(cluster), roomy(max_body_bytes=8 * 1024 * 1024)) as running:
        status, body = running.post(payload)
        failures = running.metric("mitigator_bridge_api_failures_total")
        answered = running.metric("mitigator_bridge_requests_total", {"code": "413"})

    assert status == 413, body
    assert body["error"] == "incident_too_large"
    assert "too large for the API server to store" in body["message"]
    assert len(body["rejected"]) == 100
    assert (failures, answered) == (0, 1)
    assert list_incidents(api_client, quiet) == []


def test_an_incident_outgrowing_the_api_server_through_resends_is_a_413_and_kept(
    cluster: ClusterAccess, crds: None, api_client: client.ApiClient, quiet: str
) -> None:
    """Within the default 1 MiB body limit: each request fits, their sum does not."""
    first = big_payload(quiet, alerts=50, labels=10, size=1800, half=0)
    second = big_payload(quiet, alerts=50, labels=10, size=1800, half=1)
    assert len(json.dumps(second)) < 1024 * 1024
    with RunningBridge(kube_for(cluster), roomy()) as running:
        created = running.post(first)
        status, body = running.post(second)

    assert created[0] == 200 and created[1]["incidents"][0]["result"] == "created"
    assert status == 413, body
    assert body["error"] == "incident_too_large"
    incident = only_incident(api_client, quiet)
    assert set(recorded(incident)) == {a["fingerprint"] for a in first["alerts"]}


# ----------------------------------------------------------------- 4. clipping


def test_what_a_sender_wrote_is_clipped_in_answers_and_logs(
    bridge_server: RunningBridge,
    api_client: client.ApiClient,
    quiet: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    long_name = alert(quiet, alertname="A" * 5000, fingerprint="a" * 16)
    long_namespace = alert("n" * 5000, fingerprint="b" * 16)
    long_target = alert(quiet, "w" * 5000, fingerprint="c" * 16)
    answers = [
        bridge_server.request(
            "POST",
            "/api/v1/alerts",
            json.dumps(webhook(item)).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        )
        for item in (long_name, long_namespace, long_target)
    ]
    content_type = bridge_server.request(
        "POST",
        "/api/v1/alerts",
        b"{}",
        {"Content-Type": "text/" + "p" * 5000, "Authorization": f"Bearer {TOKEN}"},
    )

    assert [status for status, _, _ in answers] == [422, 422, 422]
    assert content_type[0] == 415
    for _, _, raw in [*answers, content_type]:
        text = raw.decode()
        assert not any(run * 201 in text for run in "ANnwp"), text[:300]
    named = json.loads(answers[0][2])["rejected"][0]
    assert named["alertname"] == "A" * 200 + "… (5000 characters)"
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("mitigator")]
    assert logged and not any("A" * 201 in line or "n" * 201 in line for line in logged)
    assert list_incidents(api_client, quiet) == []


def test_a_huge_label_value_on_a_good_alert_is_left_out_not_echoed(
    bridge_server: RunningBridge, api_client: client.ApiClient, quiet: str
) -> None:
    item = alert(quiet, labels={"description": "D" * 5000})
    status, body = bridge_server.post(webhook(item))

    assert status == 200
    assert "D" * 201 not in json.dumps(body)
    incident = only_incident(api_client, quiet)
    assert "description" not in incident["spec"]["source"]["alerts"][0]["labels"]
    assert dropped(incident)[0]["labels"] == 1


# ----------------------------------------------------------------- 5. pods


def test_alerts_naming_only_a_pod_are_followed_to_its_deployment(
    bridge_server: RunningBridge, api_client: client.ApiClient, quiet: str
) -> None:
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    apps.create_namespaced_deployment(quiet, deployment_manifest("web", replicas=1))
    pods: list[Any] = []

    def owned_pod() -> bool:
        pods[:] = core.list_namespaced_pod(quiet, label_selector="app=web").items
        return bool(pods)

    wait_until(owned_pod, timeout=60, what=f"a pod of {quiet}/web")
    pod = pods[0].metadata.name
    lonely = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lonely"}}
    lonely["spec"] = {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}
    core.create_namespaced_pod(quiet, lonely)

    status, body = bridge_server.post(
        webhook(
            alert(quiet, None, fingerprint="1" * 16, labels={"pod": pod, "container": "app"}),
            alert(quiet, None, fingerprint="2" * 16, labels={"pod": "lonely"}),
            alert(quiet, None, fingerprint="3" * 16, labels={"pod": "ghost-5d8f-x1y2z"}),
        )
    )

    assert status == 200, body
    [outcome] = body["incidents"]
    assert (outcome["target"], outcome["result"], outcome["alerts"]) == ("web", "created", 1)
    incident = only_incident(api_client, quiet)
    assert incident["spec"]["target"]["name"] == "web"
    assert recorded(incident) == {"1" * 16: "firing"}
    assert [(n["fingerprint"], n["reason"]) for n in body["unmapped"]] == [
        ("2" * 16, "pod_not_in_deployment"),
        ("3" * 16, "unknown_pod"),
    ]
    assert "not owned by a controller" in body["unmapped"][0]["message"]
    assert f"not found in namespace {quiet}" in body["unmapped"][1]["message"]
    followed = {"result": "deployment"}
    assert bridge_server.metric("mitigator_bridge_pods_followed_total", followed) >= 1


# ----------------------------------------------------------------- 6. truncatedAlerts


def test_truncated_alerts_are_recorded_on_the_incident_and_counted(
    bridge_server: RunningBridge, api_client: client.ApiClient, quiet: str
) -> None:
    before = bridge_server.metric("mitigator_bridge_alerts_truncated_total")
    payload = {**webhook(alert(quiet)), "truncatedAlerts": 17}
    status, body = bridge_server.post(payload)

    assert status == 200 and body["truncatedAlerts"] == 17
    [entry] = dropped(only_incident(api_client, quiet))
    assert (entry["truncatedAlerts"], entry["alerts"], entry["labels"]) == (17, 0, 0)
    # Alertmanager's next notification truncates less: the record follows it.
    bridge_server.post({**payload, "truncatedAlerts": 0})
    assert dropped(only_incident(api_client, quiet)) == []
    code, _, metrics = bridge_server.request("GET", "/metrics")
    assert code == 200
    assert "mitigator_bridge_alerts_truncated_total" in metrics.decode()
    assert bridge_server.metric("mitigator_bridge_alerts_truncated_total") == before + 17


# ----------------------------------------------------------------- 7. attaching


def test_an_alert_for_a_target_with_an_open_incident_is_attached_to_it(
    bridge_server: RunningBridge, api_client: client.ApiClient, quiet: str
) -> None:
    create_incident(api_client, quiet, "errors-after-deploy")
    set_phase(api_client, quiet, "errors-after-deploy", "Mitigating")
    firing = alert(quiet, fingerprint="f" * 16)
    key = f'{{}}:{{namespace="{quiet}"}}'
    answers = [bridge_server.post(webhook(firing, group_key=key)) for _ in range(3)]

    assert [status for status, _ in answers] == [200] * 3
    assert [(b["incidents"][0]["name"], b["incidents"][0]["result"]) for _, b in answers] == [
        ("errors-after-deploy", "attached"),
        ("errors-after-deploy", "unchanged"),
        ("errors-after-deploy", "unchanged"),
    ]
    incident = only_incident(api_client, quiet)  # no second Incident
    assert recorded(incident) == {"f" * 16: "firing"}
    assert incident["spec"]["title"] == "by hand"  # the rest is the person's
    assert incident["spec"]["source"]["type"] == "manual"
    generation = incident["metadata"]["generation"]

    resolved = {**firing, "status": "resolved", "endsAt": stamp(EPOCH + timedelta(minutes=4))}
    status, body = bridge_server.post(webhook(resolved, group_key=key))
    assert status == 200 and body["incidents"][0]["result"] == "attached"
    incident = only_incident(api_client, quiet)
    assert recorded(incident) == {"f" * 16: "resolved"}
    assert incident["metadata"]["generation"] == generation + 1


def test_a_second_alert_group_joins_the_first_groups_incident(
    bridge_server: RunningBridge, api_client: client.ApiClient, quiet: str
) -> None:
    errors = webhook(alert(quiet, fingerprint="e" * 16), group_key='{}:{alertname="Errors"}')
    latency = webhook(
        alert(quiet, alertname="HighLatency", fingerprint="1" * 16),
        group_key='{}:{alertname="Latency"}',
    )
    created = bridge_server.post(errors)[1]["incidents"][0]
    attached = [bridge_server.post(latency)[1]["incidents"][0] for _ in range(2)]

    assert created["result"] == "created"
    assert [(a["name"], a["result"]) for a in attached] == [
        (created["name"], "attached"),
        (created["name"], "unchanged"),
    ]
    assert recorded(only_incident(api_client, quiet)) == {"e" * 16: "firing", "1" * 16: "firing"}


def test_groups_firing_together_for_one_target_make_one_incident(
    bridge_server: RunningBridge, api_client: client.ApiClient, quiet: str
) -> None:
    """Errors and latency after a bad deploy fire at once, each its own alert group."""
    groups = [
        webhook(alert(quiet, fingerprint=f"{i:016x}"), group_key=f'{{}}:{{alertname="A{i}"}}')
        for i in range(8)
    ]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(bridge_server.post, groups))

    assert [status for status, _ in answers] == [200] * 8
    results = sorted(body["incidents"][0]["result"] for _, body in answers)
    assert results == ["attached"] * 7 + ["created"]
    assert len(recorded(only_incident(api_client, quiet))) == 8


@pytest.mark.parametrize("phase", ["Resolved", "Failed"])
def test_a_finished_incident_is_not_attached_to(
    bridge_server: RunningBridge, api_client: client.ApiClient, quiet: str, phase: str
) -> None:
    create_incident(api_client, quiet, "old")
    set_phase(api_client, quiet, "old", phase)
    status, body = bridge_server.post(webhook(alert(quiet)))

    assert status == 200
    assert body["incidents"][0]["result"] == "created"
    assert sorted(i["metadata"]["name"] for i in list_incidents(api_client, quiet)) == sorted(
        ["old", body["incidents"][0]["name"]]
    )


def test_an_incident_with_the_bridges_name_for_another_target_is_not_taken_over(
    bridge_server: RunningBridge, api_client: client.ApiClient, quiet: str
) -> None:
    payload = webhook(alert(quiet))
    name = incident_name("web", group_hash(payload["groupKey"], quiet, "web"))
    create_incident(api_client, quiet, name, target={"name": "api"})
    status, body = bridge_server.post(payload)

    assert status == 422, body
    assert body["error"] == "refused_by_api_server"
    assert "was not created for this alert group" in body["message"]
    assert only_incident(api_client, quiet)["spec"]["target"]["name"] == "api"
