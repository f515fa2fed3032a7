"""Reads and writes of API objects, as plain JSON dicts (what kubectl shows).

Only this module imports the kubernetes client. Responses are decoded from the wire JSON
rather than the client's generated classes: cheaper, and the pure builders work on the same
camelCase shapes that `kubectl get -o json` prints.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

GROUP = "mitigator.luminamind.io"
VERSION = "v1alpha1"

JsonObject = dict[str, Any]
JsonPatch = list[dict[str, Any]]


# What the API server answers (422) when a JSON-patch "test" operation does not hold.
_FAILED_TEST = "the server rejected our request due to an error in our request"


class NotFound(LookupError):
    """The object does not exist."""


class Conflict(RuntimeError):
    """The object changed under us (resourceVersion test failed): read again and retry."""


def _decode(response: Any) -> JsonObject:
    return dict(json.loads(response.data))


def _translate(exc: ApiException, what: str) -> Exception:
    if exc.status == 404:
        return NotFound(f"{what} not found")
    if exc.status == 422 and _FAILED_TEST in str(exc.body):
        # A JSON-patch "test" failed: someone changed the object since we read it.
        return Conflict(f"{what} changed while it was being patched; will re-read")
    if exc.status == 409:
        return Conflict(f"{what}: conflict: {exc.reason}")
    return exc


def selector_string(match_labels: Mapping[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(match_labels.items()))


class KubeClient:
    """Synchronous access to the objects mitigator reads and changes."""

    def __init__(self, api_client: client.ApiClient | None = None) -> None:
        self.api_client = api_client or client.ApiClient()
        self.apps = client.AppsV1Api(self.api_client)
        self.core = client.CoreV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)

    @classmethod
    def from_environment(cls, kubeconfig: str | None = None) -> KubeClient:
        """In-cluster service account if present, else the kubeconfig (KUBECONFIG)."""
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            return cls()
        except config.ConfigException:
            path = kubeconfig or os.environ.get("KUBECONFIG") or None
            return cls(config.new_client_from_config(config_file=path))  # type: ignore[no-untyped-call]

    # ------------------------------------------------------------ deployments

    def read_deployment(self, namespace: str, name: str) -> JsonObject:
        try:
            return _decode(
                self.apps.read_namespaced_deployment(name, namespace, _preload_content=False)
            )
        except ApiException as exc:
            raise _translate(exc, f"Deployment {namespace}/{name}") from exc

    def patch_deployment(self, namespace: str, name: str, patch: JsonPatch) -> JsonObject:
        try:
            return _decode(
                self.apps.patch_namespaced_deployment(
                    name, namespace, patch, _preload_content=False
                )
            )
        except ApiException as exc:
            raise _translate(exc, f"Deployment {namespace}/{name}") from exc

    def list_deployments(self, namespace: str, label_selector: str = "") -> list[JsonObject]:
        response = self.apps.list_namespaced_deployment(
            namespace, label_selector=label_selector, _preload_content=False
        )
        return list(_decode(response)["items"])

    def replica_sets_of(self, deployment: JsonObject) -> list[JsonObject]:
        meta = deployment["metadata"]
        selector = selector_string(deployment["spec"]["selector"].get("matchLabels") or {})
        response = self.apps.list_namespaced_replica_set(
            meta["namespace"], label_selector=selector, _preload_content=False
        )
        return [
            rs
            for rs in _decode(response)["items"]
            if any(
                ref.get("uid") == meta["uid"] for ref in rs["metadata"].get("ownerReferences", [])
            )
        ]

    def pods_of(self, deployment: JsonObject) -> list[JsonObject]:
        meta = deployment["metadata"]
        selector = selector_string(deployment["spec"]["selector"].get("matchLabels") or {})
        response = self.core.list_namespaced_pod(
            meta["namespace"], label_selector=selector, _preload_content=False
        )
        return list(_decode(response)["items"])

    # ------------------------------------------------------------ services

    def read_service(self, namespace: str, name: str) -> JsonObject:
        try:
            return _decode(
                self.core.read_namespaced_service(name, namespace, _preload_content=False)
            )
        except ApiException as exc:
            raise _translate(exc, f"Service {namespace}/{name}") from exc

    def patch_service(self, namespace: str, name: str, patch: JsonPatch) -> JsonObject:
        try:
            return _decode(
                self.core.patch_namespaced_service(name, namespace, patch, _preload_content=False)
            )
        except ApiException as exc:
            raise _translate(exc, f"Service {namespace}/{name}") from exc

    # ------------------------------------------------------------ our resources

    def list_policies(self, namespace: str) -> list[JsonObject]:
        response = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, "mitigationpolicies", _preload_content=False
        )
        return list(_decode(response)["items"])

    def list_incidents(self, namespace: str | None = None) -> list[JsonObject]:
        if namespace is None:
            response = self.custom.list_cluster_custom_object(
                GROUP, VERSION, "incidents", _preload_content=False
            )
        else:
            response = self.custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, "incidents", _preload_content=False
            )
        return list(_decode(response)["items"])

    def read_incident(self, namespace: str, name: str) -> JsonObject:
        try:
            return _decode(
                self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, "incidents", name, _preload_content=False
                )
            )
        except ApiException as exc:
            raise _translate(exc, f"Incident {namespace}/{name}") from exc

    def create_incident(self, namespace: str, body: JsonObject) -> JsonObject:
        response = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "incidents", body, _preload_content=False
        )
        return _decode(response)

    def patch_incident(self, namespace: str, name: str, patch: JsonObject) -> JsonObject:
        response = self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "incidents", name, patch, _preload_content=False
        )
        return _decode(response)

    def patch_policy_status(self, namespace: str, name: str, status: JsonObject) -> None:
        try:
            self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, "mitigationpolicies", name, {"status": status}
            )
        except ApiException as exc:
            if exc.status != 404:  # deleted meanwhile: nothing to report on
                raise
