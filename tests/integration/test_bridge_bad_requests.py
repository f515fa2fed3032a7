"""Bad requests to the bridge_server, against the real API server: each gets the exact status code
and a reason in a JSON body, and no Incident comes of any of them."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client

from localkube.testing import ClusterAccess
from mitigator.bridge.server import ALERTS_PATH
from tests.integration.test_bridge import (
    TOKEN,
    RunningBridge,
    alert,
    bridge_config,
    kube_for,
    list_incidents,
    webhook,
)

pytestmark = pytest.mark.cluster

LIMIT = 64 * 1024  # a smaller limit than the default keeps the huge bodies cheap


def good(namespace: str) -> dict[str, Any]:
    return webhook(alert(namespace))


def changed(namespace: str, **fields: Any) -> bytes:
    """The good payload with some top-level fields replaced."""
    return json.dumps({**good(namespace), **fields}).encode()


def changed_alert(namespace: str, **fields: Any) -> bytes:
    """The good payload with fields of its alert replaced (None removes the field)."""
    payload = good(namespace)
    item = {**payload["alerts"][0], **fields}
    payload["alerts"] = [{k: v for k, v in item.items() if v is not None}]
    return json.dumps(payload).encode()


def with_labels(ns: str, **labels: str) -> bytes:
    payload = good(ns)
    payload["alerts"][0]["labels"].update(labels)
    payload["commonLabels"] = {}
    return json.dumps(payload).encode()


def huge(namespace: str) -> bytes:
    payload = good(namespace)
    payload["alerts"][0]["annotations"]["description"] = "x" * (LIMIT + 1)
    return json.dumps(payload).encode()


@dataclass(frozen=True)
class Case:
    id: str
    status: int
    error: str
    body: Callable[[str], bytes] = lambda ns: json.dumps(good(ns)).encode()
    headers: dict[str, str] = field(
        default_factory=lambda: {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {TOKEN}",
        }
    )
    method: str = "POST"
    path: str = ALERTS_PATH
    chunked: bool = False


def headers(**replaced: str | None) -> dict[str, str]:
    base: dict[str, str | None] = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {TOKEN}",
        **replaced,
    }
    return {k: v for k, v in base.items() if v is not None}


CASES = [
    # authentication: checked first, so nothing else is revealed to a stranger
    Case("no-token", 401, "unauthorized", headers=headers(Authorization=None)),
    Case("wrong-token", 401, "unauthorized", headers=headers(Authorization="Bearer nope")),
    Case(
        "token-prefix", 401, "unauthorized", headers=headers(Authorization=f"Bearer {TOKEN[:-1]}")
    ),
    Case("token-longer", 401, "unauthorized", headers=headers(Authorization=f"Bearer {TOKEN}x")),
    Case(
        "basic-scheme",
        401,
        "unauthorized",
        headers=headers(Authorization="Basic " + base64.b64encode(f"am:{TOKEN}".encode()).decode()),
    ),
    Case("bare-token", 401, "unauthorized", headers=headers(Authorization=TOKEN)),
    Case("bearer-without-token", 401, "unauthorized", headers=headers(Authorization="Bearer ")),
    Case(
        "huge-body-without-token",
        401,
        "unauthorized",
        body=huge,
        headers=headers(Authorization=None),
    ),
    # content type
    Case(
        "text-plain",
        415,
        "unsupported_media_type",
        headers=headers(**{"Content-Type": "text/plain"}),
    ),
    Case(
        "no-content-type", 415, "unsupported_media_type", headers=headers(**{"Content-Type": None})
    ),
    Case(
        "form-encoded",
        415,
        "unsupported_media_type",
        headers=headers(**{"Content-Type": "application/x-www-form-urlencoded"}),
    ),
    # size
    Case("huge-body", 413, "payload_too_large", body=huge),
    Case("huge-body-chunked", 413, "payload_too_large", body=huge, chunked=True),
    # not JSON
    Case("empty-body", 400, "malformed_json", body=lambda ns: b""),
    Case(
        "truncated-json", 400, "malformed_json", body=lambda ns: json.dumps(good(ns)).encode()[:-7]
    ),
    Case("invalid-utf8", 400, "malformed_json", body=lambda ns: b'{"version": "\xff\xfe"}'),
    Case("nan", 400, "malformed_json", body=lambda ns: b'{"version": NaN}'),
    Case("nested-too-deep", 400, "malformed_json", body=lambda ns: b"[" * 30_000 + b"]" * 30_000),
    # JSON, but not Alertmanager's
    Case("json-array", 400, "invalid_payload", body=lambda ns: json.dumps([good(ns)]).encode()),
    Case("json-string", 400, "invalid_payload", body=lambda ns: b'"alerts"'),
    Case("missing-alerts", 400, "invalid_payload", body=lambda ns: changed(ns, alerts=None)),
    Case("alerts-not-a-list", 400, "invalid_payload", body=lambda ns: changed(ns, alerts={"a": 1})),
    Case("alerts-empty", 400, "invalid_payload", body=lambda ns: changed(ns, alerts=[])),
    Case("alert-not-an-object", 400, "invalid_payload", body=lambda ns: changed(ns, alerts=["x"])),
    Case("version-3", 400, "invalid_payload", body=lambda ns: changed(ns, version="3")),
    Case("version-a-number", 400, "invalid_payload", body=lambda ns: changed(ns, version=4)),
    Case("missing-group-key", 400, "invalid_payload", body=lambda ns: changed(ns, groupKey=None)),
    Case(
        "group-key-too-long",
        400,
        "invalid_payload",
        body=lambda ns: changed(ns, groupKey="k" * 1025),
    ),
    Case(
        "status-pending",
        400,
        "invalid_payload",
        body=lambda ns: changed_alert(ns, status="pending"),
    ),
    Case(
        "label-value-a-number",
        400,
        "invalid_payload",
        body=lambda ns: changed_alert(
            ns, labels={"namespace": ns, "deployment": "web", "port": 80}
        ),
    ),
    Case("labels-a-list", 400, "invalid_payload", body=lambda ns: changed_alert(ns, labels=["a"])),
    Case(
        "starts-at-not-a-time",
        400,
        "invalid_payload",
        body=lambda ns: changed_alert(ns, startsAt="yesterday"),
    ),
    Case(
        "starts-at-a-number",
        400,
        "invalid_payload",
        body=lambda ns: changed_alert(ns, startsAt=1732630980),
    ),
    Case(
        "missing-fingerprint",
        400,
        "invalid_payload",
        body=lambda ns: changed_alert(ns, fingerprint=None),
    ),
    Case(
        "fingerprint-too-long",
        400,
        "invalid_payload",
        body=lambda ns: changed_alert(ns, fingerprint="f" * 129),
    ),
    # a payload, but a target the bridge refuses
    Case(
        "unknown-namespace",
        422,
        "unknown_namespace",
        body=lambda ns: with_labels(ns, namespace="mt-no-such-ns"),
    ),
    Case(
        "namespace-uppercase",
        422,
        "invalid_namespace",
        body=lambda ns: with_labels(ns, namespace="MT-Prod"),
    ),
    Case(
        "namespace-too-long",
        422,
        "invalid_namespace",
        body=lambda ns: with_labels(ns, namespace="mt-" + "a" * 61),
    ),
    Case(
        "deployment-underscore",
        422,
        "invalid_target",
        body=lambda ns: with_labels(ns, deployment="web_app"),
    ),
    Case(
        "deployment-too-long",
        422,
        "invalid_target",
        body=lambda ns: with_labels(ns, deployment="w" * 254),
    ),
    Case(
        "namespace-not-allowed",
        422,
        "namespace_not_allowed",
        body=lambda ns: with_labels(ns, namespace="default"),
    ),
    Case(
        "alertname-too-long",
        422,
        "invalid_alert",
        body=lambda ns: with_labels(ns, alertname="A" * 257),
    ),
    # neither the method nor the path
    Case("get-on-webhook", 405, "method_not_allowed", method="GET", body=lambda ns: b""),
    Case("unknown-path", 404, "not_found", path="/api/v2/alerts"),
]


@pytest.fixture(scope="module")
def bridge_server(cluster: ClusterAccess, crds: None) -> Iterator[RunningBridge]:
    config = bridge_config(namespaces=("mt-*",), max_body_bytes=LIMIT)
    with RunningBridge(kube_for(cluster), config) as running:
        yield running


def test_there_are_at_least_twenty_cases() -> None:
    assert len(CASES) >= 20
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_request(
    case: Case, bridge_server: RunningBridge, api_client: client.ApiClient, namespace: str
) -> None:
    created_before = bridge_server.metric("mitigator_bridge_incidents_created_total")
    payload = case.body(namespace)
    body: bytes | list[bytes] = payload
    if case.chunked:
        body = [payload[i : i + 8192] for i in range(0, len(payload), 8192)]
    status, _, raw = bridge_server.request(
        case.method, case.path, body, case.headers, chunked=case.chunked
    )

    answer = json.loads(raw)
    assert (status, answer.get("error")) == (case.status, case.error), answer
    assert answer["message"]
    assert list_incidents(api_client, namespace) == []
    assert bridge_server.metric("mitigator_bridge_incidents_created_total") == created_before


def test_a_refused_token_is_challenged(bridge_server: RunningBridge) -> None:
    status, response_headers, _ = bridge_server.request(
        "POST", ALERTS_PATH, b"{}", {"Content-Type": "application/json"}
    )
    assert status == 401
    assert response_headers["WWW-Authenticate"].startswith("Bearer")


def test_an_invalid_payload_says_which_field(bridge_server: RunningBridge, namespace: str) -> None:
    status, answer = bridge_server.post(raw=changed_alert(namespace, status="pending"))
    assert status == 400
    assert "payload.alerts[0].status" in answer["message"]


def test_the_bearer_scheme_is_case_insensitive(
    bridge_server: RunningBridge, api_client: client.ApiClient, namespace: str
) -> None:
    status, _ = bridge_server.post(good(namespace), authorization=f"bearer {TOKEN}")
    assert status == 200
    assert len(list_incidents(api_client, namespace)) == 1
