"""The Alertmanager bridge against the real API server: Incidents created, merged and
resolved from webhook payloads, idempotent under resends and races; alerts that name no
target or a refused one accounted for; API failures answered 503."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from kubernetes import client

from localkube.testing import ClusterAccess
from mitigator.bridge.identity import (
    LABEL_EPISODE,
    LABEL_GROUP,
    LABEL_SOURCE,
    group_hash,
    incident_name,
)
from mitigator.k8s.client import KubeClient
from mitigator.k8s.connect import client_of
from tests.support.bridge import (
    EPOCH,
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
from tests.support.kube import create_namespace, delete_namespace
from tests.support.objects import GROUP, VERSION

# ----------------------------------------------------------------- fixtures

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def kube(cluster: ClusterAccess) -> KubeClient:
    return kube_for(cluster)


@pytest.fixture
def quiet_namespace(api_client: client.ApiClient) -> Iterator[str]:
    """A namespace the session's operator does not watch (it watches mt-*): for tests that
    play the operator's part themselves."""
    name = create_namespace(api_client, "bt")
    yield name
    delete_namespace(api_client, name)


@pytest.fixture(scope="module")
def bridge_server(kube: KubeClient, crds: None) -> Iterator[RunningBridge]:
    config = bridge_settings(namespaces=("mt-*", "bt-*"))
    with RunningBridge(kube, config) as running:
        yield running


# ----------------------------------------------------------------- behaviour


def test_a_firing_group_becomes_one_incident(
    bridge_server: RunningBridge, api_client: client.ApiClient, namespace: str
) -> None:
    first = alert(namespace, fingerprint="a1b2c3d4e5f60718", labels={"team": "agents"})
    payload = webhook(first)
    status, body = bridge_server.post(payload)

    assert status == 200, body
    digest = group_hash(payload["groupKey"], namespace, "web")
    name = incident_name("web", digest)
    assert body["incidents"] == [
        {
            "namespace": namespace,
            "name": name,
            "target": "web",
            "result": "created",
            "alerts": 1,
            "recorded": 1,
        }
    ]
    assert body["unmapped"] == body["rejected"] == body["skipped"] == []
    incident = only_incident(api_client, namespace)
    assert incident["metadata"]["name"] == name
    assert len(name) <= 63
    labels = incident["metadata"]["labels"]
    assert labels[LABEL_SOURCE] == "alertmanager"
    assert labels[LABEL_GROUP] == digest[:40]
    assert labels[LABEL_EPISODE] == "1"
    spec = incident["spec"]
    assert spec["target"] == {"kind": "Deployment", "name": "web"}
    assert spec["title"] == "5xx rate above 5%"
    assert "severity" not in spec  # a hint in the labels; the operator classifies
    source = spec["source"]
    assert source["type"] == "alertmanager"
    assert source["alertname"] == "HighErrorRate"
    assert source["fingerprint"] == "a1b2c3d4e5f60718"
    assert source["groupKey"] == payload["groupKey"]
    assert source["labels"]["severity"] == "critical"
    assert source["labels"]["team"] == "agents"
    assert source["alerts"] == [
        {
            "fingerprint": "a1b2c3d4e5f60718",
            "alertname": "HighErrorRate",
            "status": "firing",
            "startsAt": stamp(EPOCH),
            "labels": first["labels"],
        }
    ]
    assert "resolvedAt" not in source


def test_resends_change_nothing(
    bridge_server: RunningBridge, api_client: client.ApiClient, namespace: str
) -> None:
    payload = webhook(alert(namespace))
    results = [bridge_server.post(payload) for _ in range(4)]

    assert [status for status, _ in results] == [200] * 4
    assert [body["incidents"][0]["result"] for _, body in results] == [
        "created",
        "unchanged",
        "unchanged",
        "unchanged",
    ]
    incident = only_incident(api_client, namespace)
    assert incident["metadata"]["generation"] == 1


def test_new_alerts_join_the_incident_and_the_resolution_is_recorded(
    bridge_server: RunningBridge, api_client: client.ApiClient, namespace: str
) -> None:
    a = alert(namespace, fingerprint="aaaaaaaaaaaaaaaa")
    b = alert(namespace, fingerprint="bbbbbbbbbbbbbbbb", starts_at=EPOCH + timedelta(minutes=1))
    key = f'{{}}:{{namespace="{namespace}"}}'

    bridge_server.post(webhook(a, group_key=key))
    status, body = bridge_server.post(webhook(a, b, group_key=key))
    assert status == 200 and body["incidents"][0]["result"] == "updated"
    assert recorded(only_incident(api_client, namespace)) == {
        "aaaaaaaaaaaaaaaa": "firing",
        "bbbbbbbbbbbbbbbb": "firing",
    }

    a_resolved = {**a, "status": "resolved", "endsAt": stamp(EPOCH + timedelta(minutes=3))}
    bridge_server.post(webhook(a_resolved, b, group_key=key))
    incident = only_incident(api_client, namespace)
    assert recorded(incident) == {"aaaaaaaaaaaaaaaa": "resolved", "bbbbbbbbbbbbbbbb": "firing"}
    assert "resolvedAt" not in incident["spec"]["source"]

    b_resolved = {**b, "status": "resolved", "endsAt": stamp(EPOCH + timedelta(minutes=7))}
    # Alertmanager's last word on a group: only what changed, the rest already resolved.
    status, body = bridge_server.post(webhook(b_resolved, group_key=key))
    assert status == 200 and body["incidents"][0]["result"] == "updated"
    incident = only_incident(api_client, namespace)
    source = incident["spec"]["source"]
    assert recorded(incident) == {"aaaaaaaaaaaaaaaa": "resolved", "bbbbbbbbbbbbbbbb": "resolved"}
    assert source["resolvedAt"] == stamp(EPOCH + timedelta(minutes=7))
    [b_record] = [x for x in source["alerts"] if x["fingerprint"] == "bbbbbbbbbbbbbbbb"]
    assert b_record["endsAt"] == stamp(EPOCH + timedelta(minutes=7))

    # A late resend of the firing state does not undo the resolution.
    status, body = bridge_server.post(webhook(a, b, group_key=key))
    assert body["incidents"][0]["result"] == "unchanged"
    assert only_incident(api_client, namespace)["spec"]["source"]["resolvedAt"]


def test_one_group_naming_two_deployments_makes_two_incidents(
    bridge_server: RunningBridge, api_client: client.ApiClient, namespace: str
) -> None:
    status, body = bridge_server.post(
        webhook(alert(namespace, "web"), alert(namespace, "api"), alert(namespace, "api"))
    )

    assert status == 200
    assert sorted((i["target"], i["alerts"]) for i in body["incidents"]) == [
        ("api", 2),
        ("web", 1),
    ]
    targets = sorted(i["spec"]["target"]["name"] for i in list_incidents(api_client, namespace))
    assert targets == ["api", "web"]


def test_the_target_label_list_is_tried_in_order(
    bridge_server: RunningBridge, api_client: client.ApiClient, namespace: str
) -> None:
    by_app = alert(namespace, None, labels={"app": "chat"})
    by_k8s_name = alert(namespace, None, labels={"app_kubernetes_io_name": "search"})
    both = alert(namespace, "worker", labels={"app": "ignored"})
    status, _ = bridge_server.post(webhook(by_app, by_k8s_name, both))

    assert status == 200
    targets = sorted(i["spec"]["target"]["name"] for i in list_incidents(api_client, namespace))
    assert targets == ["chat", "search", "worker"]


def test_alerts_naming_no_target_are_answered_and_counted(
    bridge_server: RunningBridge, api_client: client.ApiClient, namespace: str
) -> None:
    before = bridge_server.metric("mitigator_bridge_alerts_unmapped_total")
    no_namespace = alert(None, "web", fingerprint="0000000000000001")
    no_deployment = alert(namespace, None, fingerprint="0000000000000002")
    status, body = bridge_server.post(webhook(no_namespace, no_deployment))

    assert status == 200, body
    assert body["incidents"] == []
    assert [(n["fingerprint"], n["reason"]) for n in body["unmapped"]] == [
        ("0000000000000001", "no_namespace_label"),
        ("0000000000000002", "no_target_label"),
    ]
    assert "deployment, app, app_kubernetes_io_name" in body["unmapped"][1]["message"]
    assert bridge_server.metric("mitigator_bridge_alerts_unmapped_total") == before + 2
    assert list_incidents(api_client, namespace) == []


def test_a_group_mixing_good_and_refused_alerts_makes_the_good_ones_and_reports_the_rest(
    bridge_server: RunningBridge, api_client: client.ApiClient, namespace: str
) -> None:
    good = alert(namespace, "web", fingerprint="9000000000000001")
    unknown = alert("mt-no-such-namespace", "web", fingerprint="9000000000000002")
    invalid = alert(namespace, "Web_App", fingerprint="9000000000000003")
    unmapped = alert(namespace, None, fingerprint="9000000000000004")
    status, body = bridge_server.post(webhook(good, unknown, invalid, unmapped))

    assert status == 200, body
    assert [i["target"] for i in body["incidents"]] == ["web"]
    assert sorted((n["fingerprint"], n["reason"]) for n in body["rejected"]) == [
        ("9000000000000002", "unknown_namespace"),
        ("9000000000000003", "invalid_target"),
    ]
    assert [n["fingerprint"] for n in body["unmapped"]] == ["9000000000000004"]
    assert recorded(only_incident(api_client, namespace)) == {"9000000000000001": "firing"}


def test_concurrent_deliveries_of_a_new_group_make_one_incident(
    bridge_server: RunningBridge, api_client: client.ApiClient, namespace: str
) -> None:
    payload = webhook(alert(namespace), alert(namespace, "api"))
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda _: bridge_server.post(payload), range(24)))

    assert {status for status, _ in answers} == {200}
    results = [i["result"] for _, body in answers for i in body["incidents"]]
    assert results.count("created") == 2
    assert len(list_incidents(api_client, namespace)) == 2


def test_a_group_firing_again_after_it_was_closed_opens_the_next_episode(
    bridge_server: RunningBridge, api_client: client.ApiClient, quiet_namespace: str
) -> None:
    namespace = quiet_namespace
    key = f'{{}}:{{namespace="{namespace}",alertname="HighLatency"}}'
    firing = alert(namespace, fingerprint="cccccccccccccccc", alertname="HighLatency")
    resolved = {**firing, "status": "resolved", "endsAt": stamp(EPOCH + timedelta(minutes=9))}
    bridge_server.post(webhook(firing, group_key=key))
    bridge_server.post(webhook(resolved, group_key=key))
    first = only_incident(api_client, namespace)
    name = first["metadata"]["name"]

    # Not closed until the operator is done with it too: a re-fire re-opens this one.
    again = {**firing, "startsAt": stamp(EPOCH + timedelta(minutes=20))}
    status, body = bridge_server.post(webhook(again, group_key=key))
    assert body["incidents"][0] == {**body["incidents"][0], "name": name, "result": "updated"}
    assert "resolvedAt" not in only_incident(api_client, namespace)["spec"]["source"]
    resolved_again = {**again, "status": "resolved", "endsAt": stamp(EPOCH + timedelta(minutes=25))}
    bridge_server.post(webhook(resolved_again, group_key=key))

    # The operator resolved it: the next firing is a new episode with a new Incident.
    client.CustomObjectsApi(api_client).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "incidents", name, {"status": {"phase": "Resolved"}}
    )
    stale = bridge_server.post(webhook(again, group_key=key))[1]
    assert stale["incidents"][0]["result"] == "unchanged"
    later = {**firing, "startsAt": stamp(EPOCH + timedelta(hours=2))}
    status, body = bridge_server.post(webhook(later, group_key=key))

    assert status == 200
    assert body["incidents"][0]["name"] == f"{name}-2"
    assert body["incidents"][0]["result"] == "created"
    incidents = {i["metadata"]["name"]: i for i in list_incidents(api_client, namespace)}
    assert sorted(incidents) == [name, f"{name}-2"]
    assert incidents[f"{name}-2"]["metadata"]["labels"][LABEL_EPISODE] == "2"
    assert recorded(incidents[f"{name}-2"]) == {"cccccccccccccccc": "firing"}
    # Resends now go to the open episode.
    assert (
        bridge_server.post(webhook(later, group_key=key))[1]["incidents"][0]["name"] == f"{name}-2"
    )


def test_resolved_alerts_of_a_group_without_incident_are_skipped(
    bridge_server: RunningBridge, api_client: client.ApiClient, namespace: str
) -> None:
    status, body = bridge_server.post(webhook(alert(namespace, status="resolved")))

    assert status == 200
    assert body["incidents"] == []
    assert [n["reason"] for n in body["skipped"]] == ["no_open_incident"]
    assert list_incidents(api_client, namespace) == []


def test_an_incident_of_the_same_name_not_made_by_the_bridge_is_not_taken_over(
    bridge_server: RunningBridge, api_client: client.ApiClient, namespace: str
) -> None:
    payload = webhook(alert(namespace))
    name = incident_name("web", group_hash(payload["groupKey"], namespace, "web"))
    client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "incidents",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Incident",
            "metadata": {"name": name},
            # Another target: an open Incident of `web` itself would take the alert (attach).
            "spec": {"target": {"name": "api"}, "title": "by hand"},
        },
    )
    status, body = bridge_server.post(payload)

    assert status == 422, body
    assert body["error"] == "refused_by_api_server"
    assert "was not created for this alert group" in body["message"]
    assert only_incident(api_client, namespace)["spec"]["title"] == "by hand"


def test_healthz_and_metrics(bridge_server: RunningBridge, namespace: str) -> None:
    bridge_server.post(webhook(alert(namespace)))
    bridge_server.post(raw=b"{", content_type="application/json")

    status, _, body = bridge_server.request("GET", "/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    status, headers, body = bridge_server.request("GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    text = body.decode()
    for sample in (
        'mitigator_bridge_requests_total{code="200"}',
        'mitigator_bridge_requests_rejected_total{reason="malformed_json"}',
        "mitigator_bridge_alerts_received_total",
        "mitigator_bridge_incidents_created_total",
        "mitigator_bridge_incidents_updated_total",
        "mitigator_bridge_alerts_unmapped_total",
        "mitigator_bridge_request_duration_seconds_bucket",
    ):
        assert sample in text, sample


def test_an_unreachable_api_server_is_a_503_so_alertmanager_retries(
    crds: None, namespace: str
) -> None:
    configuration = client.Configuration()
    configuration.host = "https://127.0.0.1:9"  # nothing listens on the discard port
    configuration.retries = False
    kube = client_of(configuration)
    with RunningBridge(kube, bridge_settings()) as running:
        status, body = running.post(webhook(alert(namespace)))

        assert status == 503, body
        assert body["error"] == "kubernetes_unavailable"
        assert "the Kubernetes API failed" in body["message"]
        assert running.metric("mitigator_bridge_api_failures_total") == 1
        assert running.metric("mitigator_bridge_requests_total", {"code": "503"}) == 1
