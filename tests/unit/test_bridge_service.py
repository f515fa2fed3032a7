"""How the bridge answers what the Kubernetes API says, with a fake API: the alerts' faults
are 4xx, the API server's failures 503 (Alertmanager retries), and every write idempotent."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
from typing import Any, cast

import pytest

from mitigator.bridge.limits import read_dropped
from mitigator.bridge.payload import WebhookPayload
from mitigator.bridge.service import Answer, BridgeService
from mitigator.bridge.targets import MappingRules
from mitigator.bridge.telemetry import BridgeMetrics
from mitigator.k8s import (
    AlreadyExists,
    ApiError,
    Conflict,
    Invalid,
    KubeClient,
    NamespaceNotFound,
    NotFound,
)
from mitigator.models.base import JsonObject
from tests.unit.alerts import NOW, payload, wire_alert


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies a merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def selects(selector: str, labels: dict[str, str]) -> bool:
    """`label=value` or `label in (a,b)`, as the bridge writes them; empty selects all."""
    if " in (" in selector:
        label, _, values = selector.partition(" in (")
        return labels.get(label) in values.rstrip(")").split(",")
    label, _, value = selector.partition("=")
    return not label or labels.get(label) == value


class FakeKube:
    """Incidents in a dict, with resourceVersions; `failure`, when set, is what every call
    raises, `write_failure` what creates and patches raise."""

    def __init__(
        self,
        failure: Exception | None = None,
        write_failure: Exception | None = None,
        latency: float = 0,
    ) -> None:
        self.latency = latency  # of each list, to widen the window for races
        self.failure = failure
        self.write_failure = write_failure
        self.incidents: dict[tuple[str, str], JsonObject] = {}
        self.writes = 0
        self.lists = 0
        self._version = 0
        self._lock = threading.Lock()

    def _fail(self, write: bool = False) -> None:
        if self.failure is not None:
            raise self.failure
        if write and self.write_failure is not None:
            raise self.write_failure

    def _stored(self, namespace: str, body: JsonObject) -> JsonObject:
        self._version += 1
        self.writes += 1
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = str(self._version)
        self.incidents[(namespace, body["metadata"]["name"])] = body
        return copy.deepcopy(body)

    def create_incident(self, namespace: str, body: JsonObject) -> JsonObject:
        self._fail(write=True)
        key = (namespace, body["metadata"]["name"])
        with self._lock:
            if key in self.incidents:
                raise AlreadyExists(f"Incident {namespace}/{key[1]} already exists")
            return self._stored(namespace, body)

    def list_incidents(self, namespace: str, *, label_selector: str = "") -> list[JsonObject]:
        self._fail()
        self.lists += 1
        found = [
            copy.deepcopy(body)
            for (where, _), body in self.incidents.items()
            if where == namespace and selects(label_selector, body["metadata"].get("labels") or {})
        ]
        time.sleep(self.latency)  # the answer is on its way while others write
        return found

    def read_incident(self, namespace: str, name: str) -> JsonObject:
        self._fail()
        if (namespace, name) not in self.incidents:
            raise NotFound(f"Incident {namespace}/{name} not found")
        return copy.deepcopy(self.incidents[(namespace, name)])

    def patch_incident(self, namespace: str, name: str, patch: JsonObject) -> JsonObject:
        self._fail(write=True)
        current = self.incidents.get((namespace, name))
        if current is None:
            raise NotFound(f"Incident {namespace}/{name} not found")
        version = (patch.get("metadata") or {}).get("resourceVersion")
        with self._lock:
            if version is not None and version != current["metadata"]["resourceVersion"]:
                raise Conflict(f"Incident {namespace}/{name}: conflict")
            return self._stored(namespace, merge_patch(current, patch))

    def patch_incident_tested(
        self, namespace: str, name: str, ops: list[dict[str, Any]]
    ) -> JsonObject:
        self._fail(write=True)
        current = self.incidents.get((namespace, name))
        if current is None:
            raise NotFound(f"Incident {namespace}/{name} not found")
        with self._lock:
            return self._stored(namespace, json_patch(current, ops))


def json_patch(document: JsonObject, ops: list[dict[str, Any]]) -> JsonObject:
    """RFC 6902 for the paths the bridge writes (/spec, /metadata/annotations[/key]); a
    failed test raises Conflict, as `KubeClient.patch_incident_tested` does."""
    result = copy.deepcopy(document)
    for op in ops:
        *parents, last = [
            p.replace("~1", "/").replace("~0", "~") for p in op["path"][1:].split("/")
        ]
        holder = result
        for part in parents:
            holder = holder[part]
        if op["op"] == "test":
            if holder.get(last) != op["value"]:
                raise Conflict("a test failed")
        elif op["op"] == "remove":
            del holder[last]
        else:
            holder[last] = copy.deepcopy(op["value"])
    return result


def accept(
    kube: FakeKube, metrics: BridgeMetrics | None = None, sent: WebhookPayload | None = None
) -> Answer:
    service = BridgeService(
        cast(KubeClient, kube),
        MappingRules(),
        concurrency=2,
        metrics=metrics or BridgeMetrics(),
        clock=lambda: NOW,
    )
    try:
        return asyncio.run(service.accept(sent or payload(wire_alert("a"), wire_alert("b"))))
    finally:
        service.close()


def test_created_then_unchanged_on_a_resend() -> None:
    kube = FakeKube()
    first = accept(kube)
    assert first.status == 200
    [outcome] = first.body["incidents"]
    assert (outcome["result"], outcome["alerts"], outcome["recorded"]) == ("created", 2, 2)
    # A new service has not seen the group: it lists the namespace and finds it.
    again = accept(kube)
    assert again.status == 200
    assert [o["result"] for o in again.body["incidents"]] == ["unchanged"]
    assert len(kube.incidents) == 1


@pytest.mark.parametrize(
    ("failure", "mentions", "transient"),
    [
        (
            ApiError("Incident prod/web-x: API error 503: Service Unavailable", status=503),
            "HTTP 503",
            True,
        ),
        (
            ApiError("Incident prod/web-x: API error 429: Too Many Requests", status=429),
            "HTTP 429",
            True,
        ),
        (ApiError("Incident prod/web-x: API error 403: Forbidden", status=403), "HTTP 403", False),
        (
            ConnectionRefusedError("[Errno 111]\n Connection refused"),
            "ConnectionRefusedError",
            True,
        ),
    ],
)
def test_api_server_failures_are_a_503(failure: Exception, mentions: str, transient: bool) -> None:
    metrics = BridgeMetrics()
    answer = accept(FakeKube(failure), metrics)
    assert answer.status == 503
    assert answer.body["error"] == "kubernetes_unavailable"
    message = answer.body["message"]
    assert message.startswith("the Kubernetes API failed: ")
    assert mentions in message and "\n" not in message
    assert ("not transient" in message) is not transient
    assert metrics.value("mitigator_bridge_api_failures_total") == 1


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (Invalid("spec.title: Too long"), "refused_by_api_server"),
        (NamespaceNotFound('namespaces "prod" not found'), "unknown_namespace"),
    ],
)
def test_what_the_api_server_refuses_is_a_422(failure: Exception, reason: str) -> None:
    metrics = BridgeMetrics()
    answer = accept(FakeKube(write_failure=failure), metrics)
    assert answer.status == 422
    assert answer.body["error"] == reason
    assert [note["fingerprint"] for note in answer.body["rejected"]] == ["a", "b"]
    assert metrics.value("mitigator_bridge_alerts_rejected_total", {"reason": reason}) == 2
    assert metrics.value("mitigator_bridge_api_failures_total") == 0


def test_a_bug_is_not_an_api_failure() -> None:
    class Broken(FakeKube):
        def create_incident(self, namespace: str, body: JsonObject) -> Any:
            return None  # not an Incident: the service's own code then fails

    with pytest.raises(TypeError):
        accept(Broken())


# ----------------------------------------------------------------- too large


class ClientError(Exception):
    """What the kubernetes client raises: a status and the API server's answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = message
        self.body = json.dumps({"kind": "Status", "message": message, "code": status}).encode()


def too_large(status: int, message: str, reason: str) -> ApiError:
    return ApiError(
        f"Incident prod/web-x: API error {status}: {reason}", status=status, server_message=message
    )


@pytest.mark.parametrize(
    "failure",
    [
        too_large(413, "Request entity too large: limit is 3145728", "Request Entity Too Large"),
        too_large(500, "etcdserver: request is too large", "Internal Server Error"),
        too_large(
            500,
            "rpc error: code = ResourceExhausted desc = trying to send message larger than max "
            "(2514881 vs. 2097152)",
            "Internal Server Error",
        ),
    ],
    ids=["413", "etcd", "grpc"],
)
def test_an_incident_too_large_to_store_is_a_413_not_a_503(failure: ApiError) -> None:
    metrics = BridgeMetrics()
    answer = accept(FakeKube(write_failure=failure), metrics)
    assert answer.status == 413
    assert answer.body["error"] == "incident_too_large"
    assert "too large" in answer.body["message"]
    assert metrics.value("mitigator_bridge_api_failures_total") == 0
    assert (
        metrics.value("mitigator_bridge_alerts_rejected_total", {"reason": "incident_too_large"})
        == 2
    )


def test_any_other_5xx_is_still_a_503() -> None:
    failure = too_large(500, "etcdserver: leader changed", "Internal Server Error")
    assert accept(FakeKube(write_failure=failure)).status == 503


# ----------------------------------------------------------------- attaching, counting


def test_a_second_group_for_the_same_target_is_attached() -> None:
    kube = FakeKube()
    metrics = BridgeMetrics()
    first = accept(kube, metrics, payload(wire_alert("a"), key="{}:{alertname=A}"))
    second = payload(wire_alert("b", alertname="HighLatency"), key="{}:{alertname=B}")
    answers = [accept(kube, metrics, second) for _ in range(3)]
    [created] = first.body["incidents"]
    assert [a.body["incidents"][0]["result"] for a in answers] == [
        "attached",
        "unchanged",
        "unchanged",
    ]
    assert {a.body["incidents"][0]["name"] for a in answers} == {created["name"]}
    [(_, only)] = kube.incidents.items()
    assert [a["fingerprint"] for a in only["spec"]["source"]["alerts"]] == ["a", "b"]
    assert metrics.value("mitigator_bridge_incidents_attached_total") == 1


def test_groups_firing_together_for_one_target_make_one_incident() -> None:
    kube = FakeKube(latency=0.02)
    service = BridgeService(
        cast(KubeClient, kube), MappingRules(), concurrency=8, metrics=BridgeMetrics()
    )
    groups = [payload(wire_alert(f"f{i}"), key=f"{{}}:{{group={i}}}") for i in range(8)]

    async def together() -> list[Answer]:
        return list(await asyncio.gather(*(service.accept(group) for group in groups)))

    try:
        answers = asyncio.run(together())
    finally:
        service.close()
    results = sorted(answer.body["incidents"][0]["result"] for answer in answers)
    assert results == ["attached"] * 7 + ["created"]
    [(_, only)] = kube.incidents.items()
    assert len(only["spec"]["source"]["alerts"]) == 8


def test_a_stale_memory_of_the_incident_costs_a_read_never_a_lost_write() -> None:
    kube = FakeKube()
    service = BridgeService(
        cast(KubeClient, kube), MappingRules(), concurrency=2, metrics=BridgeMetrics()
    )
    try:
        asyncio.run(service.accept(payload(wire_alert("a"), key="{}:{g=1}")))
        [(namespace, name)] = kube.incidents
        # Someone else writes the Incident after the bridge did (another bridge replica).
        alerts = [*kube.incidents[(namespace, name)]["spec"]["source"]["alerts"]]
        alerts.append({"fingerprint": "x", "status": "firing"})
        kube.patch_incident(namespace, name, {"spec": {"source": {"alerts": alerts}}})
        answer = asyncio.run(service.accept(payload(wire_alert("b"), key="{}:{g=2}")))
    finally:
        service.close()
    assert answer.body["incidents"][0]["result"] == "attached"
    stored = kube.incidents[(namespace, name)]
    assert [a["fingerprint"] for a in stored["spec"]["source"]["alerts"]] == ["a", "x", "b"]


def test_truncated_alerts_are_counted_and_recorded() -> None:
    kube = FakeKube()
    metrics = BridgeMetrics()
    sent = payload(wire_alert("a"), truncatedAlerts=12)
    answer = accept(kube, metrics, sent)
    accept(kube, metrics, sent)
    assert answer.body["truncatedAlerts"] == 12
    assert metrics.value("mitigator_bridge_alerts_truncated_total") == 24
    [(_, stored)] = kube.incidents.items()
    [entry] = read_dropped(stored["metadata"]["annotations"]).values()
    assert entry.truncated_alerts == 12


# ----------------------------------------------------------------- pods


class Objects:
    """`KubeClient.read_pod` / `read_replica_set`, over a dict of objects."""

    def __init__(self, objects: dict[str, JsonObject]) -> None:
        self.objects = objects
        self.reads = 0

    def read(self, namespace: str, name: str) -> JsonObject:
        self.reads += 1
        if name not in self.objects:
            raise NotFound(f"{name} not found")
        return copy.deepcopy(self.objects[name])


def owned_by(kind: str, name: str) -> JsonObject:
    return {"metadata": {"ownerReferences": [{"kind": kind, "name": name, "controller": True}]}}


def test_pods_are_followed_through_their_replica_set() -> None:
    kube = FakeKube()
    pods = Objects(
        {"web-7d9f-abc": owned_by("ReplicaSet", "web-7d9f"), "db-0": owned_by("StatefulSet", "db")}
    )
    kube.read_pod = pods.read  # type: ignore[attr-defined]
    kube.read_replica_set = Objects({"web-7d9f": owned_by("Deployment", "web")}).read  # type: ignore[attr-defined]
    metrics = BridgeMetrics()
    sent = payload(
        wire_alert("a", deployment=None, pod="web-7d9f-abc"),
        wire_alert("b", deployment=None, pod="db-0"),
        wire_alert("c", deployment=None, pod="gone-1"),
    )
    service = BridgeService(
        cast(KubeClient, kube), MappingRules(), concurrency=2, metrics=metrics, clock=lambda: NOW
    )
    try:
        answer = asyncio.run(service.accept(sent))
        reads = pods.reads
        # What was found is remembered: a resend reads no pod again for it.
        asyncio.run(service.accept(payload(wire_alert("a", deployment=None, pod="web-7d9f-abc"))))
        assert pods.reads == reads
    finally:
        service.close()
    assert answer.status == 200
    [outcome] = answer.body["incidents"]
    assert (outcome["target"], outcome["alerts"]) == ("web", 1)
    assert [(n["fingerprint"], n["reason"]) for n in answer.body["unmapped"]] == [
        ("b", "pod_not_in_deployment"),
        ("c", "unknown_pod"),
    ]
    assert "StatefulSet db" in answer.body["unmapped"][0]["message"]
    assert metrics.value("mitigator_bridge_pods_followed_total", {"result": "deployment"}) == 2


def test_a_pod_the_bridge_may_not_read_is_unmapped_with_the_reason() -> None:
    kube = FakeKube()

    def forbidden(*_: Any, **__: Any) -> Any:
        raise ApiError("Pod prod/web-1: API error 403: Forbidden", status=403)

    kube.read_pod = forbidden  # type: ignore[attr-defined]
    answer = accept(kube, None, payload(wire_alert("a", deployment=None, pod="web-1")))
    assert answer.status == 200
    [note] = answer.body["unmapped"]
    assert note["reason"] == "pod_lookup_failed"
    assert "get on pods" in note["message"]

    def unavailable(*_: Any, **__: Any) -> Any:
        raise ApiError("Pod prod/web-2: API error 503: Service Unavailable", status=503)

    kube.read_pod = unavailable  # type: ignore[attr-defined]
    assert accept(kube, None, payload(wire_alert("a", deployment=None, pod="web-2"))).status == 503


# ----------------------------------------------------------------- group commit


def together(kube: FakeKube, groups: list[WebhookPayload]) -> list[Answer]:
    """The groups sent at once, as Alertmanager does in a storm."""
    service = BridgeService(
        cast(KubeClient, kube), MappingRules(), concurrency=4, metrics=BridgeMetrics()
    )

    async def send() -> list[Answer]:
        return list(await asyncio.gather(*(service.accept(group) for group in groups)))

    try:
        return asyncio.run(send())
    finally:
        service.close()


def storm(size: int) -> list[WebhookPayload]:
    return [payload(wire_alert(f"f{i}"), key=f"{{}}:{{storm={i}}}") for i in range(size)]


def test_a_storm_for_one_target_is_one_create_and_one_patch() -> None:
    kube = FakeKube()
    answers = together(kube, storm(40))
    results = [answer.body["incidents"][0]["result"] for answer in answers]
    assert results == ["created"] + ["attached"] * 39
    [(_, only)] = kube.incidents.items()
    assert len(only["spec"]["source"]["alerts"]) == 40
    # Each answer says what the Incident records once the write that carried it was made.
    assert {answer.body["incidents"][0]["recorded"] for answer in answers[1:]} == {40}
    assert kube.writes == 2


def test_a_failed_write_fails_every_group_it_carried() -> None:
    class PatchesFail(FakeKube):
        def patch_incident_tested(self, namespace: str, name: str, ops: Any) -> JsonObject:
            raise ApiError("Incident prod/x: API error 503: Service Unavailable", status=503)

    kube = PatchesFail()
    answers = together(kube, storm(5))
    assert [answer.status for answer in answers] == [200, 503, 503, 503, 503]
    [(_, only)] = kube.incidents.items()
    assert len(only["spec"]["source"]["alerts"]) == 1


class WrittenMeanwhile(FakeKube):
    """Someone writes the Incident between the bridge's read and its write, once."""

    def __init__(self, change: dict[str, Any]) -> None:
        super().__init__()
        self.change = change
        self.raced = False

    def patch_incident_tested(
        self, namespace: str, name: str, ops: list[dict[str, Any]]
    ) -> JsonObject:
        if not self.raced:
            self.raced = True
            self._stored(namespace, merge_patch(self.incidents[(namespace, name)], self.change))
        return super().patch_incident_tested(namespace, name, ops)


def person_and_storm(kube: FakeKube, size: int) -> list[Answer]:
    manual = {"metadata": {"name": "manual"}, "spec": {"target": {"name": "web"}}}
    kube.create_incident("prod", manual)
    return together(kube, storm(size))


def test_the_operators_status_writes_are_no_conflict_for_the_bridge() -> None:
    kube = WrittenMeanwhile({"status": {"phase": "Triaging"}})
    answers = person_and_storm(kube, 10)
    assert [answer.body["incidents"][0]["name"] for answer in answers] == ["manual"] * 10
    stored = kube.incidents[("prod", "manual")]
    assert len(stored["spec"]["source"]["alerts"]) == 10
    assert stored["status"] == {"phase": "Triaging"}
    assert kube.writes == 3  # the person's create, the operator's status, one patch


def test_a_concurrent_change_of_the_alerts_is_decided_again_never_lost() -> None:
    other = {"fingerprint": "x", "status": "firing", "alertname": "Other"}
    kube = WrittenMeanwhile({"spec": {"source": {"type": "alertmanager", "alerts": [other]}}})
    answers = person_and_storm(kube, 10)
    assert {answer.body["incidents"][0]["result"] for answer in answers} == {"attached"}
    stored = kube.incidents[("prod", "manual")]
    assert [a["fingerprint"] for a in stored["spec"]["source"]["alerts"]] == [
        "x",
        *(f"f{i}" for i in range(10)),
    ]
    # The person's, the other writer's, then one (the first attempt's test failed: "x" stays).
    assert kube.writes == 3
