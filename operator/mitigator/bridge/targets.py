"""Which Deployment an alert names: the namespace label and the first present target label,
both valid Kubernetes names, in a namespace the bridge may write to; or, when no target label
is present, the pod it names, which `mitigator.bridge.owners` follows to its Deployment
(Pod → ReplicaSet → Deployment). Pure.

The control plane's namespaces (`ALWAYS_PROTECTED_NAMESPACES`: kube-system, kube-public,
kube-node-lease) are always refused, as the operator refuses to act there; the bridge's
setting adds more (fnmatch patterns), and is checked before the allowed namespaces."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mitigator.bridge.notes import AlertNote, Reason, show
from mitigator.bridge.payload import WebhookAlert
from mitigator.domain.guardrails import ALWAYS_PROTECTED_NAMESPACES
from mitigator.models.common import DNS1123_LABEL_PATTERN, DNS1123_SUBDOMAIN_PATTERN

DEFAULT_TARGET_LABELS = ("deployment", "app", "app_kubernetes_io_name")
DEFAULT_NAMESPACE_LABEL = "namespace"
DEFAULT_POD_LABEL = "pod"

_NAMESPACE = re.compile(DNS1123_LABEL_PATTERN)
_DEPLOYMENT = re.compile(DNS1123_SUBDOMAIN_PATTERN)


@dataclass(frozen=True)
class MappingRules:
    """Which labels name the target, and where Incidents may be created."""

    namespace_label: str = DEFAULT_NAMESPACE_LABEL
    target_labels: tuple[str, ...] = DEFAULT_TARGET_LABELS
    # fnmatch patterns; empty means any namespace.
    allowed_namespaces: tuple[str, ...] = ()
    # fnmatch patterns refused on top of ALWAYS_PROTECTED_NAMESPACES.
    protected_namespaces: tuple[str, ...] = ()
    # The label naming a pod, followed to its Deployment when no target label is present;
    # empty: pods are not followed.
    pod_label: str = DEFAULT_POD_LABEL

    def namespace_allowed(self, namespace: str) -> bool:
        return not self.allowed_namespaces or any(
            fnmatch.fnmatchcase(namespace, pattern) for pattern in self.allowed_namespaces
        )

    def protection(self, namespace: str) -> str | None:
        """Why the bridge creates no Incident in `namespace`, if it is protected."""
        if namespace in ALWAYS_PROTECTED_NAMESPACES:
            return (
                f"namespace {namespace} belongs to the control plane and is always protected; "
                "the bridge creates no Incidents there"
            )
        if any(fnmatch.fnmatchcase(namespace, pattern) for pattern in self.protected_namespaces):
            return (
                f"namespace {namespace} is protected (MITIGATOR_BRIDGE_PROTECTED_NAMESPACES); "
                "the bridge creates no Incidents there"
            )
        return None

    @property
    def naming_labels(self) -> tuple[str, ...]:
        """The labels that name a target: kept first when an alert's labels are capped."""
        return (self.namespace_label, *self.target_labels, self.pod_label)


@dataclass(frozen=True)
class PodRef:
    """An alert that names a pod and no Deployment: its owner chain decides the target."""

    namespace: str
    pod: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.pod)


@dataclass(frozen=True)
class Unowned:
    """Why a pod leads to no Deployment (a `Reason` among `notes.UNMAPPED`)."""

    reason: Reason
    message: str


# What following a pod gave: the Deployment's name, or why there is none.
PodOwner = str | Unowned


def target_of(
    alert: WebhookAlert, labels: Mapping[str, str], rules: MappingRules
) -> tuple[str, str] | PodRef | AlertNote:
    """The (namespace, Deployment) the alert names, the pod to follow, or why it names
    nothing the bridge takes."""

    def note(reason: Reason, message: str, **where: str | None) -> AlertNote:
        return AlertNote(alert.fingerprint, alert.alertname, reason, message, **where)

    namespace = labels.get(rules.namespace_label, "")
    if not namespace:
        return note(Reason.NO_NAMESPACE_LABEL, f"the alert has no {rules.namespace_label!r} label")
    label, deployment = next(
        ((name, labels[name]) for name in rules.target_labels if labels.get(name)), ("", "")
    )
    pod = labels.get(rules.pod_label, "") if rules.pod_label and not deployment else ""
    if not deployment and not pod:
        following = f", nor a pod (label {rules.pod_label})" if rules.pod_label else ""
        return note(
            Reason.NO_TARGET_LABEL,
            f"the alert names no Deployment (labels {', '.join(rules.target_labels)})" + following,
            namespace=namespace,
        )
    if len(namespace) > 63 or not _NAMESPACE.fullmatch(namespace):
        return note(
            Reason.INVALID_NAMESPACE,
            f"label {rules.namespace_label}={show(namespace)} is not a namespace name "
            "(a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters)",
        )
    name, label, kind = (
        (deployment, label, "Deployment") if deployment else (pod, rules.pod_label, "pod")
    )
    if len(name) > 253 or not _DEPLOYMENT.fullmatch(name):
        return note(
            Reason.INVALID_TARGET,
            f"label {label}={show(name)} is not a {kind} name (a DNS-1123 "
            "subdomain: lowercase letters, digits, '-' and '.', at most 253 characters)",
            namespace=namespace,
        )
    where = {"namespace": namespace, "target": deployment or None}
    protected = rules.protection(namespace)
    if protected is not None:
        return note(Reason.PROTECTED_NAMESPACE, protected, **where)
    if not rules.namespace_allowed(namespace):
        return note(
            Reason.NAMESPACE_NOT_ALLOWED,
            f"the bridge does not create Incidents in namespace {namespace} "
            f"(allowed: {', '.join(rules.allowed_namespaces)})",
            **where,
        )
    return (namespace, deployment) if deployment else PodRef(namespace, pod)


def followed(
    alert: WebhookAlert, pod: PodRef, owner: PodOwner | None
) -> tuple[str, str] | AlertNote:
    """The target of an alert that names `pod`, given where its owner chain led."""
    if isinstance(owner, str):
        return pod.namespace, owner
    found = owner or Unowned(Reason.POD_LOOKUP_FAILED, f"pod {pod.pod} was not looked up")
    return AlertNote(
        alert.fingerprint, alert.alertname, found.reason, found.message, namespace=pod.namespace
    )


def controller_of(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of the object's controlling owner, if it has one."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("controller") and ref.get("kind") and ref.get("name"):
            return str(ref["kind"]), str(ref["name"])
    return None
