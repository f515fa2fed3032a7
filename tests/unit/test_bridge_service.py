"""How the bridge answers what the Kubernetes API says, with a fake API: the alerts' faults
are 4xx, the API server's failures 503 (Alertmanager retries), and every write idempotent."""

from __future__ import annotations

import asyncio
import copy
from typing import Any, cast

import pytest

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


class FakeKube:
    """Incidents in a dict, with resourceVersions; `failure`, when set, is what every call
    raises, `write_failure` what creates and patches raise."""

    def __init__(
        self, failure: Exception | None = None, write_failure: Exception | None = None
    ) -> None:
        self.failure = failure
        self.write_failure = write_failure
        self.incidents: dict[tuple[str, str], JsonObject] = {}
        self.writes = 0
        self._version = 0

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
        if key in self.incidents:
            raise AlreadyExists(f"Incident {namespace}/{key[1]} already exists")
        return self._stored(namespace, body)

    def list_incidents(self, namespace: str, *, label_selector: str = "") -> list[JsonObject]:
        self._fail()
        label, _, value = label_selector.partition("=")
        return [
            copy.deepcopy(body)
            for (where, _), body in self.incidents.items()
            if where == namespace
            and (not label or (body["metadata"].get("labels") or {}).get(label) == value)
        ]

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
        if version is not None and version != current["metadata"]["resourceVersion"]:
            raise Conflict(f"Incident {namespace}/{name}: conflict")
        return self._stored(namespace, merge_patch(current, patch))


def accept(kube: FakeKube, metrics: BridgeMetrics | None = None) -> Answer:
    service = BridgeService(
        cast(KubeClient, kube),
        MappingRules(),
        concurrency=2,
        metrics=metrics or BridgeMetrics(),
        clock=lambda: NOW,
    )
    try:
        return asyncio.run(service.accept(payload(wire_alert("a"), wire_alert("b"))))
    finally:
        service.close()


def test_created_then_unchanged_on_a_resend() -> None:
    kube = FakeKube()
    first = accept(kube)
    assert first.status == 200
    [outcome] = first.body["incidents"]
    assert (outcome["result"], outcome["alerts"], outcome["recorded"]) == ("created", 2, 2)
    # A new service has not seen the group: it creates first, finds the name taken, reads.
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
