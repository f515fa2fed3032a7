"""Which Deployment an alert names: the namespace label and the first present target label,
both valid Kubernetes names, in a namespace the bridge may write to. Pure."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass

from mitigator.bridge.notes import AlertNote, Reason
from mitigator.bridge.payload import WebhookAlert
from mitigator.models.common import DNS1123_LABEL_PATTERN, DNS1123_SUBDOMAIN_PATTERN

DEFAULT_TARGET_LABELS = ("deployment", "app", "app_kubernetes_io_name")
DEFAULT_NAMESPACE_LABEL = "namespace"

_NAMESPACE = re.compile(DNS1123_LABEL_PATTERN)
_DEPLOYMENT = re.compile(DNS1123_SUBDOMAIN_PATTERN)


@dataclass(frozen=True)
class MappingRules:
    """Which labels name the target, and where Incidents may be created."""

    namespace_label: str = DEFAULT_NAMESPACE_LABEL
    target_labels: tuple[str, ...] = DEFAULT_TARGET_LABELS
    # fnmatch patterns; empty means any namespace.
    allowed_namespaces: tuple[str, ...] = ()

    def namespace_allowed(self, namespace: str) -> bool:
        return not self.allowed_namespaces or any(
            fnmatch.fnmatchcase(namespace, pattern) for pattern in self.allowed_namespaces
        )


def target_of(
    alert: WebhookAlert, labels: Mapping[str, str], rules: MappingRules
) -> tuple[str, str] | AlertNote:
    """The (namespace, Deployment) the alert names, or why it names none the bridge takes."""

    def note(reason: Reason, message: str, **where: str | None) -> AlertNote:
        return AlertNote(alert.fingerprint, alert.alertname, reason, message, **where)

    namespace = labels.get(rules.namespace_label, "")
    if not namespace:
        return note(Reason.NO_NAMESPACE_LABEL, f"the alert has no {rules.namespace_label!r} label")
    label, deployment = next(
        ((name, labels[name]) for name in rules.target_labels if labels.get(name)), ("", "")
    )
    if not deployment:
        return note(
            Reason.NO_TARGET_LABEL,
            f"the alert names no Deployment (labels {', '.join(rules.target_labels)})",
            namespace=namespace,
        )
    if len(namespace) > 63 or not _NAMESPACE.fullmatch(namespace):
        return note(
            Reason.INVALID_NAMESPACE,
            f"label {rules.namespace_label}={_show(namespace)} is not a namespace name "
            "(a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters)",
        )
    if len(deployment) > 253 or not _DEPLOYMENT.fullmatch(deployment):
        return note(
            Reason.INVALID_TARGET,
            f"label {label}={_show(deployment)} is not a Deployment name (a DNS-1123 "
            "subdomain: lowercase letters, digits, '-' and '.', at most 253 characters)",
            namespace=namespace,
        )
    if not rules.namespace_allowed(namespace):
        return note(
            Reason.NAMESPACE_NOT_ALLOWED,
            f"the bridge does not create Incidents in namespace {namespace} "
            f"(allowed: {', '.join(rules.allowed_namespaces)})",
            namespace=namespace,
            target=deployment,
        )
    return namespace, deployment


def _show(value: str) -> str:
    return repr(value) if len(value) <= 80 else f"{value[:60]!r}… ({len(value)} characters)"
