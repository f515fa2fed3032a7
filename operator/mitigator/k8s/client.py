"""Reads and writes of API objects, as plain JSON dicts (what kubectl shows).

Over mitigator.k8s.transport (urllib3), not the kubernetes package: the processes that run
the operator and the bridge never import it (about 20 MB each). The pure builders work on
the same camelCase shapes that `kubectl get -o json` prints.
"""

from __future__ import annotations

import base64
import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from mitigator import API_GROUP, API_VERSION, INCIDENT_PLURAL, POLICY_PLURAL
from mitigator.k8s import login
from mitigator.k8s.calls import CustomResource, call, items, selector_of
from mitigator.k8s.errors import NotFound, translate, translate_tested_write, translate_write
from mitigator.k8s.evidence_reads import EvidenceReads
from mitigator.k8s.transport import (
    JSON_PATCH,
    MERGE_PATCH,
    HttpError,
    Transport,
    api_path,
    patch_content_type,
)
from mitigator.k8s.watching import Page, WatchStream, list_page, watch
from mitigator.models import JsonObject
from mitigator.models.evidence import TargetRead

JsonPatch = list[dict[str, Any]]

APPS, CORE, AUTOSCALING = "apps/v1", "v1", "autoscaling/v2"
COORDINATION, NETWORKING = "coordination.k8s.io/v1", "networking.k8s.io/v1"
OURS = f"{API_GROUP}/{API_VERSION}"
# The kubernetes client's pool: 5 connections per CPU, where no size is asked for.
DEFAULT_POOL_SIZE = 5 * (os.cpu_count() or 1)
# Listings started ahead of need (`TargetRead.prefetch_pods`) in flight at once; each is one
# request that waits on nothing else, so a full pool only queues them, never deadlocks.
BACKGROUND_READERS = 16
# The evidence's reads (Events, logs: evidence_reads.py) in flight at once, for every capture
# together; apart from the listings above, which they follow.
EVIDENCE_READERS = 16


class KubeClient:
    """Synchronous access to the objects mitigator reads and changes."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        # Threads start on the first prefetch only (a client that never prefetches has none).
        self._background = ThreadPoolExecutor(
            max_workers=BACKGROUND_READERS, thread_name_prefix="kube-read"
        )
        self._evidence_readers = ThreadPoolExecutor(
            max_workers=EVIDENCE_READERS, thread_name_prefix="evidence"
        )

    @classmethod
    def from_environment(cls, kubeconfig: str | None = None) -> KubeClient:
        """In-cluster service account if present, else the kubeconfig (KUBECONFIG)."""
        return cls.from_environment_pooled(kubeconfig, pool_size=DEFAULT_POOL_SIZE)

    @classmethod
    def from_environment_pooled(
        cls, kubeconfig: str | None = None, *, pool_size: int
    ) -> KubeClient:
        """Like `from_environment`, with room for `pool_size` concurrent connections (the
        client's default is 5 per CPU; more threads than that reconnect on every call).
        A 401 reads the ServiceAccount or kubeconfig again (a rotated token)."""
        return cls(Transport(partial(login.from_environment, kubeconfig), pool_size=pool_size))

    @property
    def server(self) -> str:
        return self.transport.server

    def _call(self, what: str, method: str, path: str, **how: Any) -> JsonObject:
        return call(self.transport, what, method, path, **how)

    # ------------------------------------------------------------ deployments

    def read_deployment(self, namespace: str, name: str) -> JsonObject:
        return self._call(
            f"Deployment {namespace}/{name}",
            "GET",
            api_path(APPS, "deployments", namespace=namespace, name=name),
        )

    def patch_deployment(self, namespace: str, name: str, patch: JsonPatch) -> JsonObject:
        """A JSON patch; a failed `test` operation is a `Conflict`."""
        return self._call(
            f"Deployment {namespace}/{name}",
            "PATCH",
            api_path(APPS, "deployments", namespace=namespace, name=name),
            body=patch,
            content_type=JSON_PATCH,
        )

    def list_deployments(self, namespace: str, label_selector: str = "") -> list[JsonObject]:
        return items(
            self.transport,
            f"Deployments in {namespace}",
            api_path(APPS, "deployments", namespace=namespace),
            labelSelector=label_selector,
        )

    def deployment_metadata_page(
        self, namespace: str | None, *, limit: int, continue_token: str = ""
    ) -> Page:
        """One page of the Deployments' metadata (of every namespace if None); `Expired` when
        the continue token is too old."""
        return list_page(
            self.transport,
            api_path(APPS, "deployments", namespace=namespace),
            what=_deployments_in(namespace),
            limit=limit,
            continue_token=continue_token,
        )

    def watch_deployment_metadata(
        self, namespace: str | None, *, resource_version: str, timeout_seconds: int
    ) -> WatchStream:
        """The Deployments' metadata changes since `resource_version`, bookmarks included;
        `Expired` (here or from the stream) when that version is too old."""
        return watch(
            self.transport,
            api_path(APPS, "deployments", namespace=namespace),
            what=_deployments_in(namespace),
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
        )

    def replica_sets_of(self, deployment: JsonObject) -> list[JsonObject]:
        meta = deployment["metadata"]
        return [
            rs
            for rs in items(
                self.transport,
                f"ReplicaSets of {meta['namespace']}/{meta['name']}",
                api_path(APPS, "replicasets", namespace=meta["namespace"]),
                labelSelector=selector_of(deployment),
            )
            if any(
                ref.get("uid") == meta["uid"] for ref in rs["metadata"].get("ownerReferences", [])
            )
        ]

    def target_read(self, deployment: JsonObject) -> TargetRead:
        """The Deployment as read, with its ReplicaSets and pods listed on demand, once, and
        its evidence read when a step asks (evidence_reads.py)."""
        return TargetRead(
            deployment,
            list_replica_sets=partial(self.replica_sets_of, deployment),
            list_pods=partial(self.pods_of, deployment),
            background=self._background.submit,
            start_evidence=self._start_evidence,
        )

    def _start_evidence(self, read: TargetRead) -> EvidenceReads:
        return EvidenceReads(
            read,
            submit=self._evidence_readers.submit,
            events_of=self.events_of,
            pod_log=self.pod_log,
        )

    def read_pod(self, namespace: str, name: str) -> JsonObject:
        return self._call(
            f"Pod {namespace}/{name}",
            "GET",
            api_path(CORE, "pods", namespace=namespace, name=name),
        )

    def read_replica_set(self, namespace: str, name: str) -> JsonObject:
        return self._call(
            f"ReplicaSet {namespace}/{name}",
            "GET",
            api_path(APPS, "replicasets", namespace=namespace, name=name),
        )

    def pods_of(self, deployment: JsonObject) -> list[JsonObject]:
        meta = deployment["metadata"]
        return items(
            self.transport,
            f"Pods of {meta['namespace']}/{meta['name']}",
            api_path(CORE, "pods", namespace=meta["namespace"]),
            labelSelector=selector_of(deployment),
        )

    # ------------------------------------------------------------ services

    def list_services(self, namespace: str) -> list[JsonObject]:
        return items(
            self.transport,
            f"Services in {namespace}",
            api_path(CORE, "services", namespace=namespace),
        )

    def read_service(self, namespace: str, name: str) -> JsonObject:
        return self._call(
            f"Service {namespace}/{name}",
            "GET",
            api_path(CORE, "services", namespace=namespace, name=name),
        )

    def patch_service(self, namespace: str, name: str, patch: JsonPatch) -> JsonObject:
        """A JSON patch; a failed `test` operation is a `Conflict`."""
        return self._call(
            f"Service {namespace}/{name}",
            "PATCH",
            api_path(CORE, "services", namespace=namespace, name=name),
            body=patch,
            content_type=JSON_PATCH,
        )

    # ------------------------------------------------------------ autoscalers

    def autoscalers_of(self, deployment: JsonObject) -> list[JsonObject]:
        """The HorizontalPodAutoscalers whose scaleTargetRef is this Deployment."""
        meta = deployment["metadata"]
        return [
            hpa
            for hpa in items(
                self.transport,
                f"HorizontalPodAutoscalers in {meta['namespace']}",
                api_path(AUTOSCALING, "horizontalpodautoscalers", namespace=meta["namespace"]),
            )
            if (ref := hpa["spec"].get("scaleTargetRef") or {}).get("kind") == "Deployment"
            and ref.get("name") == meta["name"]
        ]

    def read_autoscaler(self, namespace: str, name: str) -> JsonObject:
        return self._call(
            f"HorizontalPodAutoscaler {namespace}/{name}",
            "GET",
            api_path(AUTOSCALING, "horizontalpodautoscalers", namespace=namespace, name=name),
        )

    def patch_autoscaler(self, namespace: str, name: str, patch: JsonPatch) -> JsonObject:
        """A JSON patch; a failed `test` operation is a `Conflict`."""
        return self._call(
            f"HorizontalPodAutoscaler {namespace}/{name}",
            "PATCH",
            api_path(AUTOSCALING, "horizontalpodautoscalers", namespace=namespace, name=name),
            body=patch,
            content_type=JSON_PATCH,
        )

    # ------------------------------------------------------------ other custom resources

    def read_custom(self, resource: CustomResource, namespace: str, name: str) -> JsonObject:
        group, version, plural = resource
        return self._call(
            f"{plural}.{group} {namespace}/{name}",
            "GET",
            api_path(f"{group}/{version}", plural, namespace=namespace, name=name),
        )

    def patch_custom(
        self, resource: CustomResource, namespace: str, name: str, patch: JsonPatch
    ) -> JsonObject:
        """A JSON patch; a failed `test` operation is a `Conflict`."""
        group, version, plural = resource
        return self._call(
            f"{plural}.{group} {namespace}/{name}",
            "PATCH",
            api_path(f"{group}/{version}", plural, namespace=namespace, name=name),
            body=patch,
            content_type=JSON_PATCH,
        )

    # ------------------------------------------------------------ our resources

    def list_policies(self, namespace: str) -> list[JsonObject]:
        return items(
            self.transport,
            f"MitigationPolicies in {namespace}",
            api_path(OURS, POLICY_PLURAL, namespace=namespace),
        )

    def list_incidents(
        self, namespace: str | None = None, *, label_selector: str = ""
    ) -> list[JsonObject]:
        """The Incidents of `namespace` (every namespace if None) with these labels."""
        return items(
            self.transport,
            "Incidents" if namespace is None else f"Incidents in {namespace}",
            api_path(OURS, INCIDENT_PLURAL, namespace=namespace),
            labelSelector=label_selector,
        )

    def read_incident(self, namespace: str, name: str) -> JsonObject:
        return self._call(
            f"Incident {namespace}/{name}",
            "GET",
            api_path(OURS, INCIDENT_PLURAL, namespace=namespace, name=name),
        )

    def create_incident(self, namespace: str, body: JsonObject) -> JsonObject:
        """Create an Incident; AlreadyExists, NamespaceNotFound and Invalid say why not."""
        name = (body.get("metadata") or {}).get("name", "")
        return self._call(
            f"Incident {namespace}/{name}",
            "POST",
            api_path(OURS, INCIDENT_PLURAL, namespace=namespace),
            body=body,
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
        return self._patch_incident(namespace, name, patch, translate=translate_tested_write)

    def _patch_incident(
        self, namespace: str, name: str, patch: JsonObject | JsonPatch, **how: Any
    ) -> JsonObject:
        return self._call(
            f"Incident {namespace}/{name}",
            "PATCH",
            api_path(OURS, INCIDENT_PLURAL, namespace=namespace, name=name),
            body=patch,
            # A list is a JSON patch, an object a JSON merge patch.
            content_type=patch_content_type(patch),
            **how,
        )

    def patch_policy_status(self, namespace: str, name: str, status: JsonObject) -> None:
        with contextlib.suppress(NotFound):  # deleted meanwhile: nothing to report on
            self._call(
                f"MitigationPolicy {namespace}/{name}",
                "PATCH",
                api_path(OURS, POLICY_PLURAL, namespace=namespace, name=name, subresource="status"),
                body={"status": status},
                content_type=MERGE_PATCH,
            )

    # ------------------------------------------------------------ leases (leader election)

    def read_lease(self, namespace: str, name: str, *, timeout: float) -> JsonObject:
        return self._call(
            f"Lease {namespace}/{name}",
            "GET",
            api_path(COORDINATION, "leases", namespace=namespace, name=name),
            timeout=timeout,
        )

    def create_lease(self, namespace: str, body: JsonObject, *, timeout: float) -> JsonObject:
        """AlreadyExists when another replica created it first."""
        name = (body.get("metadata") or {}).get("name", "")
        return self._call(
            f"Lease {namespace}/{name}",
            "POST",
            api_path(COORDINATION, "leases", namespace=namespace),
            body=body,
            translate=translate_write,
            timeout=timeout,
        )

    def replace_lease(
        self, namespace: str, name: str, body: JsonObject, *, timeout: float
    ) -> JsonObject:
        """An update that carries the resourceVersion read: a concurrent writer is a
        `Conflict` (the optimistic lock every acquisition and renewal rests on)."""
        return self._call(
            f"Lease {namespace}/{name}",
            "PUT",
            api_path(COORDINATION, "leases", namespace=namespace, name=name),
            body=body,
            translate=translate_write,
            timeout=timeout,
        )

    # ------------------------------------------------------------ incident CLI, evidence, isolate
    # (issue 15: who am I, policies by name, pod logs and Events, ConfigMaps, NetworkPolicies)

    def whoami(self) -> str:
        """The caller's user name as the API server sees it (SelfSubjectReview, as
        `kubectl auth whoami` does)."""
        review = self._call(
            "SelfSubjectReview",
            "POST",
            api_path("authentication.k8s.io/v1", "selfsubjectreviews"),
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
        return str(((review.get("status") or {}).get("userInfo") or {}).get("username") or "")

    def read_policy(self, namespace: str, name: str) -> JsonObject:
        return self._call(
            f"MitigationPolicy {namespace}/{name}",
            "GET",
            api_path(OURS, POLICY_PLURAL, namespace=namespace, name=name),
        )

    def pod_log(self, namespace: str, pod: str, *, container: str, tail_lines: int) -> str:
        """The last `tail_lines` lines the container logged (what `kubectl logs` shows)."""
        try:
            data = self.transport.request_bytes(
                "GET",
                api_path(CORE, "pods", namespace=namespace, name=pod, subresource="log"),
                query={"container": container, "tailLines": tail_lines},
            )
        except HttpError as exc:
            raise translate(exc, f"logs of Pod {namespace}/{pod}/{container}") from exc
        return data.decode("utf-8", errors="replace")

    def events_of(self, namespace: str, *, kind: str, name: str) -> list[JsonObject]:
        """The core/v1 Events about one object (`kubectl describe`'s Events section)."""
        return items(
            self.transport,
            f"Events of {kind} {namespace}/{name}",
            api_path(CORE, "events", namespace=namespace),
            fieldSelector=f"involvedObject.kind={kind},involvedObject.name={name}",
        )

    def create_config_map(self, namespace: str, body: JsonObject) -> JsonObject:
        name = (body.get("metadata") or {}).get("name", "")
        return self._call(
            f"ConfigMap {namespace}/{name}",
            "POST",
            api_path(CORE, "configmaps", namespace=namespace),
            body=body,
            translate=translate_write,
        )

    def read_config_map(self, namespace: str, name: str) -> JsonObject:
        return self._call(
            f"ConfigMap {namespace}/{name}",
            "GET",
            api_path(CORE, "configmaps", namespace=namespace, name=name),
        )

    def create_network_policy(self, namespace: str, body: JsonObject) -> JsonObject:
        name = (body.get("metadata") or {}).get("name", "")
        return self._call(
            f"NetworkPolicy {namespace}/{name}",
            "POST",
            api_path(NETWORKING, "networkpolicies", namespace=namespace),
            body=body,
            translate=translate_write,
        )

    def read_network_policy(self, namespace: str, name: str) -> JsonObject:
        return self._call(
            f"NetworkPolicy {namespace}/{name}",
            "GET",
            api_path(NETWORKING, "networkpolicies", namespace=namespace, name=name),
        )

    def delete_network_policy(self, namespace: str, name: str) -> None:
        """Delete it; one already gone is fine."""
        with contextlib.suppress(NotFound):
            self._call(
                f"NetworkPolicy {namespace}/{name}",
                "DELETE",
                api_path(NETWORKING, "networkpolicies", namespace=namespace, name=name),
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
        secret = self._call(
            f"Secret {namespace}/{name}",
            "GET",
            api_path(CORE, "secrets", namespace=namespace, name=name),
        )
        return {
            key: base64.b64decode(value).decode()
            for key, value in (secret.get("data") or {}).items()
        }


def _deployments_in(namespace: str | None) -> str:
    return "Deployments" if namespace is None else f"Deployments in {namespace}"
