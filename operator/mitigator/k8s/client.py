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

from mitigator import API_GROUP, API_VERSION, INCIDENT_PLURAL, POLICY_PLURAL
from mitigator.models import JsonObject

JsonPatch = list[dict[str, Any]]


# What the API server answers (422) when a JSON-patch "test" operation does not hold.
_FAILED_TEST = "the server rejected our request due to an error in our request"


class NotFound(LookupError):
    """The object does not exist."""


class Conflict(RuntimeError):
    """The object changed under us (resourceVersion test failed): read again and retry."""


class AlreadyExists(Conflict):
    """An object of that name exists already (a create answered 409)."""


class NamespaceNotFound(NotFound):
    """The namespace to create the object in does not exist."""


class Invalid(ValueError):
    """The API server refused the object as invalid (422); the message says why."""


class ApiError(RuntimeError):
    """Any other answer of the API server; `transient` when a retry may succeed."""

    def __init__(self, message: str, *, status: int | None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def transient(self) -> bool:
        return self.status is None or self.status >= 500 or self.status == 429


def _status_of(exc: ApiException) -> JsonObject:
    """The metav1.Status the API server answered with, or {}."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _translate_write(exc: ApiException, what: str) -> Exception:
    """Like `_translate`, for creates and merge patches: 409 AlreadyExists vs a resourceVersion
    conflict, a missing namespace vs a missing object, and 422 as `Invalid`."""
    status = _status_of(exc)
    details = status.get("details") or {}
    if exc.status == 409:
        if status.get("reason") == "AlreadyExists":
            return AlreadyExists(f"{what} already exists")
        return Conflict(f"{what}: conflict: {status.get('message') or exc.reason}")
    if exc.status == 404 and details.get("kind") == "namespaces":
        return NamespaceNotFound(str(status.get("message") or f"namespace of {what} not found"))
    if exc.status == 404 and details.get("name"):
        return NotFound(f"{what} not found")
    if exc.status == 422:
        return Invalid(str(status.get("message") or exc.reason))
    return _api_error(exc, what)


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
    return _api_error(exc, what)


def _api_error(exc: ApiException, what: str) -> ApiError:
    return ApiError(f"{what}: API error {exc.status}: {exc.reason}", status=exc.status)


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

    @classmethod
    def from_environment_pooled(
        cls, kubeconfig: str | None = None, *, pool_size: int
    ) -> KubeClient:
        """Like `from_environment`, with room for `pool_size` concurrent connections (the
        client's default is 5 per CPU; more threads than that reconnect on every call)."""
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except config.ConfigException:
            path = kubeconfig or os.environ.get("KUBECONFIG") or None
            config.load_kube_config(config_file=path, client_configuration=configuration)  # type: ignore[no-untyped-call]
        configuration.connection_pool_maxsize = max(pool_size, 1)
        return cls(client.ApiClient(configuration))

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
            API_GROUP, API_VERSION, namespace, POLICY_PLURAL, _preload_content=False
        )
        return list(_decode(response)["items"])

    def list_incidents(
        self, namespace: str | None = None, *, label_selector: str = ""
    ) -> list[JsonObject]:
        """The Incidents of `namespace` (every namespace if None) with these labels."""
        if namespace is None:
            response = self.custom.list_cluster_custom_object(
                API_GROUP,
                API_VERSION,
                INCIDENT_PLURAL,
                label_selector=label_selector,
                _preload_content=False,
            )
        else:
            response = self.custom.list_namespaced_custom_object(
                API_GROUP,
                API_VERSION,
                namespace,
                INCIDENT_PLURAL,
                label_selector=label_selector,
                _preload_content=False,
            )
        return list(_decode(response)["items"])

    def read_incident(self, namespace: str, name: str) -> JsonObject:
        try:
            return _decode(
                self.custom.get_namespaced_custom_object(
                    API_GROUP, API_VERSION, namespace, INCIDENT_PLURAL, name, _preload_content=False
                )
            )
        except ApiException as exc:
            raise _translate(exc, f"Incident {namespace}/{name}") from exc

    def create_incident(self, namespace: str, body: JsonObject) -> JsonObject:
        """Create an Incident; AlreadyExists, NamespaceNotFound and Invalid say why not."""
        name = (body.get("metadata") or {}).get("name", "")
        try:
            return _decode(
                self.custom.create_namespaced_custom_object(
                    API_GROUP, API_VERSION, namespace, INCIDENT_PLURAL, body, _preload_content=False
                )
            )
        except ApiException as exc:
            raise _translate_write(exc, f"Incident {namespace}/{name}") from exc

    def patch_incident(self, namespace: str, name: str, patch: JsonObject) -> JsonObject:
        """A JSON merge patch of an Incident; with metadata.resourceVersion in the patch, a
        concurrent change is a `Conflict`. NotFound and Invalid as for `create_incident`."""
        try:
            return _decode(
                self.custom.patch_namespaced_custom_object(
                    API_GROUP,
                    API_VERSION,
                    namespace,
                    INCIDENT_PLURAL,
                    name,
                    patch,
                    _preload_content=False,
                )
            )
        except ApiException as exc:
            raise _translate_write(exc, f"Incident {namespace}/{name}") from exc

    def patch_policy_status(self, namespace: str, name: str, status: JsonObject) -> None:
        try:
            self.custom.patch_namespaced_custom_object_status(
                API_GROUP, API_VERSION, namespace, POLICY_PLURAL, name, {"status": status}
            )
        except ApiException as exc:
            if exc.status != 404:  # deleted meanwhile: nothing to report on
                raise
