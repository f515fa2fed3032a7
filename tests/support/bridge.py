"""The Alertmanager bridge as tests talk to it: ``RunningBridge`` (a bridge serving over real
HTTP from a background event loop), Alertmanager webhook payloads, and reading back what the
bridge made. Used by the integration, end-to-end and benchmark tiers."""

from __future__ import annotations

import asyncio
import http.client
import json
import ssl
import threading
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from kubernetes import client

from localkube.testing import ClusterAccess
from mitigator.bridge.config import BridgeSettings
from mitigator.bridge.server import ALERTS_PATH, Bridge
from mitigator.k8s.client import KubeClient
from tests.support.objects import GROUP, VERSION

TOKEN = "bridge-test-token-0123456789abcdef"


# ----------------------------------------------------------------- harness


class RunningBridge:
    """A `Bridge` serving on its own event loop in a background thread (as it would in its own
    process), so that tests talk to it over real HTTP."""

    def __init__(
        self,
        kube: KubeClient,
        settings: BridgeSettings,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.bridge = Bridge(kube, settings)
        self.ssl_context = ssl_context
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> RunningBridge:
        self._thread.start()
        start = self.bridge.start("127.0.0.1", 0, self.ssl_context)
        self.port = asyncio.run_coroutine_threadsafe(start, self._loop).result(timeout=30)
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self.bridge.stop(), self._loop).result(timeout=60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}{ALERTS_PATH}"

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.bridge.metrics.value(name, labels)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
        *,
        chunked: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        connection: http.client.HTTPConnection
        if tls is not None:
            connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=tls)
        else:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(
                method, path, body=body, headers=headers or {}, encode_chunked=chunked
            )
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def post(
        self,
        payload: Any = None,
        *,
        raw: bytes | None = None,
        token: str | None = TOKEN,
        authorization: str | None = None,
        content_type: str | None = "application/json",
    ) -> tuple[int, dict[str, Any]]:
        """POST to the webhook; answers (status, JSON body)."""
        body = raw if raw is not None else json.dumps(payload).encode()
        headers = {}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if authorization is not None:
            headers["Authorization"] = authorization
        elif token is not None:
            headers["Authorization"] = f"Bearer {token}"
        status, _, data = self.request("POST", ALERTS_PATH, body, headers)
        return status, json.loads(data)


def bridge_settings(**overrides: Any) -> BridgeSettings:
    """The bridge's settings with the tests' token (the environment fills in the rest, as it
    does for `mitigator bridge`)."""
    return BridgeSettings(token=TOKEN, **overrides)


def kube_for(cluster: ClusterAccess, pool_size: int = 16) -> KubeClient:
    return KubeClient.from_environment_pooled(str(cluster.kubeconfig), pool_size=pool_size)


# ----------------------------------------------------------------- payloads


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


EPOCH = datetime(2025, 11, 26, 14, 23, tzinfo=UTC)
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def alert(
    namespace: str | None,
    deployment: str | None = "web",
    *,
    alertname: str = "HighErrorRate",
    status: str = "firing",
    fingerprint: str | None = None,
    starts_at: datetime = EPOCH,
    ends_at: datetime | None = None,
    labels: dict[str, str] | None = None,
    summary: str | None = "5xx rate above 5%",
) -> dict[str, Any]:
    """One alert as Alertmanager puts it in a webhook payload."""
    all_labels = {"alertname": alertname, "severity": "critical"}
    if namespace is not None:
        all_labels["namespace"] = namespace
    if deployment is not None:
        all_labels["deployment"] = deployment
    all_labels.update(labels or {})
    if status == "resolved" and ends_at is None:
        ends_at = starts_at + timedelta(minutes=5)
    return {
        "status": status,
        "labels": all_labels,
        "annotations": {"summary": summary} if summary else {},
        "startsAt": stamp(starts_at),
        "endsAt": stamp(ends_at) if ends_at else GO_ZERO_TIME,
        "generatorURL": "http://prometheus.example/graph",
        "fingerprint": fingerprint or uuid.uuid4().hex[:16],
    }


def webhook(*alerts: dict[str, Any], group_key: str | None = None) -> dict[str, Any]:
    """A version 4 webhook payload for one alert group."""
    common = dict(alerts[0]["labels"]) if alerts else {}
    for item in alerts[1:]:
        common = {k: v for k, v in common.items() if item["labels"].get(k) == v}
    firing = any(item["status"] == "firing" for item in alerts)
    return {
        "version": "4",
        "groupKey": group_key or f'{{}}:{{group="{uuid.uuid4().hex}"}}',
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": "mitigator-bridge",
        "groupLabels": {k: common[k] for k in ("alertname", "namespace") if k in common},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": list(alerts),
    }


# ----------------------------------------------------------------- reading back


def list_incidents(api_client: client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    custom = client.CustomObjectsApi(api_client)
    listed = cast(
        dict[str, Any], custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "incidents")
    )
    return list(listed["items"])


def only_incident(api_client: client.ApiClient, namespace: str) -> dict[str, Any]:
    found = list_incidents(api_client, namespace)
    assert len(found) == 1, [item["metadata"]["name"] for item in found]
    return found[0]


def recorded(incident: dict[str, Any]) -> dict[str, str]:
    """fingerprint → status of the alerts an Incident records."""
    return {a["fingerprint"]: a["status"] for a in incident["spec"]["source"].get("alerts", [])}
