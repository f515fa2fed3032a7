"""GitOps tools that own a Deployment's spec (Argo CD, Flux): who they are, as read from the
marks they leave on the objects they apply, and what a rule does about them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

ARGO_TRACKING_ANNOTATION = "argocd.argoproj.io/tracking-id"
ARGO_INSTANCE_LABEL = "argocd.argoproj.io/instance"
# Argo CD's own namespace when an Application's tracking id does not name one.
ARGO_DEFAULT_NAMESPACE = "argocd"
_FLUX_LABELS = {
    "Kustomization": ("kustomize.toolkit.fluxcd.io/name", "kustomize.toolkit.fluxcd.io/namespace"),
    "HelmRelease": ("helm.toolkit.fluxcd.io/name", "helm.toolkit.fluxcd.io/namespace"),
}


class GitOpsMode(StrEnum):
    """What a rule does with a target a GitOps tool owns: its self-heal would undo a
    mitigation within seconds (Argo CD) or at its next interval (Flux)."""

    SUSPEND = "suspend"  # suspend the tool's reconciliation for the incident, restore after
    REFUSE = "refuse"  # escalate, naming the tool; change nothing
    PROCEED = "proceed"  # act anyway, with a warning Event and condition


@dataclass(frozen=True)
class GitOpsOwner:
    """The object of a GitOps tool that applies the target."""

    tool: str  # "Argo CD" | "Flux"
    kind: str  # "Application" | "Kustomization" | "HelmRelease"
    name: str
    namespace: str

    def __str__(self) -> str:
        return f"{self.tool} {self.kind} {self.namespace}/{self.name}"


def gitops_owner(
    labels: Mapping[str, str], annotations: Mapping[str, str], *, namespace: str
) -> GitOpsOwner | None:
    """The tool that applies an object with these marks, if any. Argo CD: its tracking
    annotation ("<app>:<group>/<kind>:<ns>/<name>", <app> possibly "<namespace>_<name>") or the
    argocd.argoproj.io/instance label; Flux: the kustomize- or helm-controller's labels."""
    tracking = annotations.get(ARGO_TRACKING_ANNOTATION)
    app = tracking.split(":", 1)[0] if tracking else labels.get(ARGO_INSTANCE_LABEL)
    if app:
        app_namespace, _, app_name = app.rpartition("_")
        return GitOpsOwner(
            "Argo CD", "Application", app_name, app_namespace or ARGO_DEFAULT_NAMESPACE
        )
    for kind, (name_label, namespace_label) in _FLUX_LABELS.items():
        if name_label in labels:
            return GitOpsOwner(
                "Flux", kind, labels[name_label], labels.get(namespace_label, namespace)
            )
    return None
