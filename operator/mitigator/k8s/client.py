"""Reads and writes of API objects, as plain JSON dicts (what kubectl shows).

Only this module imports the kubernetes client. Responses are decoded from the wire JSON
rather than the client's generated classes: cheaper, and the pure builders work on the same
camelCase shapes that `kubectl get -o json` prints.
"""

from __future__ import annotations

import base64
import contextlib
import os
from functools import partial
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from mitigator import API_GROUP, API_VERSION, INCIDENT_PLURAL, POLICY_PLURAL
from mitigator.k8s.calls import CustomResource, call, items, selector_of
from mitigator.k8s.errors import NotFound, translate, translate_tested_write, translate_write
from mitigator.models import JsonObject
from mitigator.models.evidence import TargetRead

JsonPatch = list[dict[str, Any]]


class KubeClient:
    """Synchronous access to the objects mitigator reads and changes."""

    def __init__(self, api_client: client.ApiClient | None = None) -> None:
        self.api_client = api_client or client.ApiClient()
        self.apps = client.AppsV1Api(self.api_client)
        self.core = client.CoreV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.autoscaling = client.AutoscalingV2Api(self.api_client)
        self.coordination = client.CoordinationV1Api(self.api_client)

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
        return call(
            f"Deployment {namespace}/{name}", self.apps.read_namespaced_deployment, name, namespace
        )

    def patch_deployment(self, namespace: str, name: str, patch: JsonPatch) -> JsonObject:
        """A JSON patch; a failed `test` operation is a `Conflict`."""
        return call(
            f"Deployment {namespace}/{name}",
            self.apps.patch_namespaced_deployment,
            name,
            namespace,
            patch,
        )

    def list_deployments(self, namespace: str, label_selector: str = "") -> list[JsonObject]:
        return items(
            f"Deployments in {namespace}",
            self.apps.list_namespaced_deployment,
            namespace,
            label_selector=label_selector,
        )

    def replica_sets_of(self, deployment: JsonObject) -> list[JsonObject]:
        meta = deployment["metadata"]
        return [
            rs
            for rs in items(
                f"ReplicaSets of {meta['namespace']}/{meta['name']}",
                self.apps.list_namespaced_replica_set,
                meta["namespace"],
                label_selector=selector_of(deployment),
            )
            if any(
                ref.get("uid") == meta["uid"] for ref in rs["metadata"].get("ownerReferences", [])
            )
        ]

    def target_read(self, deployment: JsonObject) -> TargetRead:
        """The Deployment as read, with its ReplicaSets and pods listed on demand, once."""
        return TargetRead(
            deployment,
            list_replica_sets=partial(self.replica_sets_of, deployment),
            list_pods=partial(self.pods_of, deployment),
        )

    def read_pod(self, namespace: str, name: str) -> JsonObject:
        return call(f"Pod {namespace}/{name}", self.core.read_namespaced_pod, name, namespace)

    def read_replica_set(self, namespace: str, name: str) -> JsonObject:
        return call(
            f"ReplicaSet {namespace}/{name}", self.apps.read_namespaced_replica_set, name, namespace
        )

    def pods_of(self, deployment: JsonObject) -> list[JsonObject]:
        meta = deployment["metadata"]
        return items(
            f"Pods of {meta['namespace']}/{meta['name']}",
            self.core.list_namespaced_pod,
            meta["namespace"],
            label_selector=selector_of(deployment),
        )

    # ------------------------------------------------------------ services

    def list_services(self, namespace: str) -> list[JsonObject]:
        return items(f"Services in {namespace}", self.core.list_namespaced_service, namespace)

    def read_service(self, namespace: str, name: str) -> JsonObject:
        return call(
            f"Service {namespace}/{name}", self.core.read_namespaced_service, name, namespace
        )

    def patch_service(self, namespace: str, name: str, patch: JsonPatch) -> JsonObject:
        """A JSON patch; a failed `test` operation is a `Conflict`."""
        return call(
            f"Service {namespace}/{name}",
            self.core.patch_namespaced_service,
            name,
            namespace,
            patch,
        )

    # ------------------------------------------------------------ autoscalers

    def autoscalers_of(self, deployment: JsonObject) -> list[JsonObject]:
        """The HorizontalPodAutoscalers whose scaleTargetRef is this Deployment."""
        meta = deployment["metadata"]
        return [
            hpa
            for hpa in items(
                f"HorizontalPodAutoscalers in {meta['namespace']}",
                self.autoscaling.list_namespaced_horizontal_pod_autoscaler,
                meta["namespace"],
            )
            if (ref := hpa["spec"].get("scaleTargetRef") or {}).get("kind") == "Deployment"
            and ref.get("name") == meta["name"]
        ]

    def read_autoscaler(self, namespace: str, name: str) -> JsonObject:
        return call(
            f"HorizontalPodAutoscaler {namespace}/{name}",
            self.autoscaling.read_namespaced_horizontal_pod_autoscaler,
            name,
            namespace,
        )

    def patch_autoscaler(self, namespace: str, name: str, patch: JsonPatch) -> JsonObject:
        """A JSON patch; a failed `test` operation is a `Conflict`."""
        return call(
            f"HorizontalPodAutoscaler {namespace}/{name}",
            self.autoscaling.patch_namespaced_horizontal_pod_autoscaler,
            name,
            namespace,
            patch,
        )

    # ------------------------------------------------------------ other custom resources

    def read_custom(self, resource: CustomResource, namespace: str, name: str) -> JsonObject:
        group, version, plural = resource
        return call(
            f"{plural}.{group} {namespace}/{name}",
            self.custom.get_namespaced_custom_object,
            group,
            version,
            namespace,
            plural,
            name,
        )

    def patch_custom(
        self, resource: CustomResource, namespace: str, name: str, patch: JsonPatch
    ) -> JsonObject:
        """A JSON patch; a failed `test` operation is a `Conflict`."""
        group, version, plural = resource
        return call(
            f"{plural}.{group} {namespace}/{name}",
            self.custom.patch_namespaced_custom_object,
            group,
            version,
            namespace,
            plural,
            name,
            patch,
            # A list is a JSON patch; the client would send it as a merge patch.
            _content_type="application/json-patch+json",
        )

    # ------------------------------------------------------------ our resources

    def list_policies(self, namespace: str) -> list[JsonObject]:
        return items(
            f"MitigationPolicies in {namespace}",
            self.custom.list_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            namespace,
            POLICY_PLURAL,
        )

    def list_incidents(
        self, namespace: str | None = None, *, label_selector: str = ""
    ) -> list[JsonObject]:
        """The Incidents of `namespace` (every namespace if None) with these labels."""
        if namespace is None:
            return items(
                "Incidents",
                self.custom.list_cluster_custom_object,
                API_GROUP,
                API_VERSION,
                INCIDENT_PLURAL,
                label_selector=label_selector,
            )
        return items(
            f"Incidents in {namespace}",
            self.custom.list_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            namespace,
            INCIDENT_PLURAL,
            label_selector=label_selector,
        )

    def read_incident(self, namespace: str, name: str) -> JsonObject:
        return call(
            f"Incident {namespace}/{name}",
            self.custom.get_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            namespace,
            INCIDENT_PLURAL,
            name,
        )

    def create_incident(self, namespace: str, body: JsonObject) -> JsonObject:
        """Create an Incident; AlreadyExists, NamespaceNotFound and Invalid say why not."""
        name = (body.get("metadata") or {}).get("name", "")
        return call(
            f"Incident {namespace}/{name}",
            self.custom.create_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            namespace,
            INCIDENT_PLURAL,
            body,
            translate=translate_write,
        )

    def patch_incident(self, namespace: str, name: str, patch: JsonObject) -> JsonObject:
        """A JSON merge patch of an Incident; with metadata.resourceVersion in the patch, a
        concurrent change is a `Conflict`. NotFound and Invalid as for `create_incident`."""
        return self._patch_incident(namespace, name, patch, translate=translate_write)

    def patch_incident_tested(self, namespace: str, name: str, patch: JsonPatch) -> JsonObject:
        """A JSON patch of an Incident: its `test` operations guard only what the writer
        decided on, so a write of other fields (the operator's status) is no conflict; a
        failed test is a `Conflict`. NotFound and Invalid as for `create_incident`."""
        return self._patch_incident(
            namespace,
            name,
            patch,
            # A list is a JSON patch; the client would send it as a merge patch.
            _content_type="application/json-patch+json",
            translate=translate_tested_write,
        )

    def _patch_incident(
        self, namespace: str, name: str, patch: JsonObject | JsonPatch, **how: Any
    ) -> JsonObject:
        return call(
            f"Incident {namespace}/{name}",
            self.custom.patch_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            namespace,
            INCIDENT_PLURAL,
            name,
            patch,
            **how,
        )

    def patch_policy_status(self, namespace: str, name: str, status: JsonObject) -> None:
        with contextlib.suppress(NotFound):  # deleted meanwhile: nothing to report on
            call(
                f"MitigationPolicy {namespace}/{name}",
                self.custom.patch_namespaced_custom_object_status,
                API_GROUP,
                API_VERSION,
                namespace,
                POLICY_PLURAL,
                name,
                {"status": status},
            )

    # ------------------------------------------------------------ leases (leader election)

    def read_lease(self, namespace: str, name: str, *, timeout: float) -> JsonObject:
        return call(
            f"Lease {namespace}/{name}",
            self.coordination.read_namespaced_lease,
            name,
            namespace,
            _request_timeout=timeout,
        )

    def create_lease(self, namespace: str, body: JsonObject, *, timeout: float) -> JsonObject:
        """AlreadyExists when another replica created it first."""
        name = (body.get("metadata") or {}).get("name", "")
        return call(
            f"Lease {namespace}/{name}",
            self.coordination.create_namespaced_lease,
            namespace,
            body,
            translate=translate_write,
            _request_timeout=timeout,
        )

    def replace_lease(
        self, namespace: str, name: str, body: JsonObject, *, timeout: float
    ) -> JsonObject:
        """An update that carries the resourceVersion read: a concurrent writer is a
        `Conflict` (the optimistic lock every acquisition and renewal rests on)."""
        return call(
            f"Lease {namespace}/{name}",
            self.coordination.replace_namespaced_lease,
            name,
            namespace,
            body,
            translate=translate_write,
            _request_timeout=timeout,
        )

    # ------------------------------------------------------------ incident CLI, evidence, isolate
    # (issue 15: who am I, policies by name, pod logs and Events, ConfigMaps, NetworkPolicies)

    def whoami(self) -> str:
        """The caller's user name as the API server sees it (SelfSubjectReview, as
        `kubectl auth whoami` does)."""
        review = call(
            "SelfSubjectReview",
            client.AuthenticationV1Api(self.api_client).create_self_subject_review,
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
        return str(((review.get("status") or {}).get("userInfo") or {}).get("username") or "")

    def read_policy(self, namespace: str, name: str) -> JsonObject:
        return call(
            f"MitigationPolicy {namespace}/{name}",
            self.custom.get_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            namespace,
            POLICY_PLURAL,
            name,
        )

    def pod_log(self, namespace: str, pod: str, *, container: str, tail_lines: int) -> str:
        """The last `tail_lines` lines the container logged (what `kubectl logs` shows)."""
        try:
            response: Any = self.core.read_namespaced_pod_log(
                pod,
                namespace,
                container=container,
                tail_lines=tail_lines,
                _preload_content=False,
            )
        except ApiException as exc:
            raise translate(exc, f"logs of Pod {namespace}/{pod}/{container}") from exc
        return bytes(response.data).decode("utf-8", errors="replace")

    def events_of(self, namespace: str, *, kind: str, name: str) -> list[JsonObject]:
        """The core/v1 Events about one object (`kubectl describe`'s Events section)."""
        return items(
            f"Events of {kind} {namespace}/{name}",
            self.core.list_namespaced_event,
            namespace,
            field_selector=f"involvedObject.kind={kind},involvedObject.name={name}",
        )

    def create_config_map(self, namespace: str, body: JsonObject) -> JsonObject:
        name = (body.get("metadata") or {}).get("name", "")
        return call(
            f"ConfigMap {namespace}/{name}",
            self.core.create_namespaced_config_map,
            namespace,
            body,
            translate=translate_write,
        )

    def read_config_map(self, namespace: str, name: str) -> JsonObject:
        return call(
            f"ConfigMap {namespace}/{name}", self.core.read_namespaced_config_map, name, namespace
        )

    def create_network_policy(self, namespace: str, body: JsonObject) -> JsonObject:
        name = (body.get("metadata") or {}).get("name", "")
        return call(
            f"NetworkPolicy {namespace}/{name}",
            client.NetworkingV1Api(self.api_client).create_namespaced_network_policy,
            namespace,
            body,
            translate=translate_write,
        )

    def read_network_policy(self, namespace: str, name: str) -> JsonObject:
        return call(
            f"NetworkPolicy {namespace}/{name}",
            client.NetworkingV1Api(self.api_client).read_namespaced_network_policy,
            name,
            namespace,
        )

    def delete_network_policy(self, namespace: str, name: str) -> None:
        """Delete it; one already gone is fine."""
        with contextlib.suppress(NotFound):
            call(
                f"NetworkPolicy {namespace}/{name}",
                client.NetworkingV1Api(self.api_client).delete_namespaced_network_policy,
                name,
                namespace,
            )

    # ------------------------------------------------------------ secrets (issue 11)

    def read_secret_value(self, namespace: str, name: str, key: str) -> str:
        """One key of a Secret a policy names, in the policy's own namespace. Raises
        `NotFound` when the Secret or its key is missing; the value never appears in an
        error."""
        data = self.read_secret_data(namespace, name)
        if key not in data:
            raise NotFound(f"Secret {namespace}/{name} has no key {key}")
        return data[key].strip()

    def read_secret_data(self, namespace: str, name: str) -> dict[str, str]:
        """A Secret's data, decoded; `NotFound` when it is missing."""
        secret = call(
            f"Secret {namespace}/{name}", self.core.read_namespaced_secret, name, namespace
        )
        return {
            key: base64.b64decode(value).decode()
            for key, value in (secret.get("data") or {}).items()
        }
