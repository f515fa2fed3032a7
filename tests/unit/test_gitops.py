"""Which GitOps tool applies a Deployment, and what suspends and restores it."""

from __future__ import annotations

import pytest

from mitigator.actions.change import ActionRefused
from mitigator.actions.gitops import restoration, suspension
from mitigator.models.gitops import GitOpsOwner, gitops_owner


def test_argo_cd_by_its_tracking_id_or_instance_label() -> None:
    tracked = {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:prod/web"}
    assert gitops_owner({}, tracked, namespace="prod") == GitOpsOwner(
        "Argo CD", "Application", "shop", "argocd"
    )
    anywhere = {"argocd.argoproj.io/tracking-id": "team-a_shop:apps/Deployment:prod/web"}
    assert gitops_owner({}, anywhere, namespace="prod") == GitOpsOwner(
        "Argo CD", "Application", "shop", "team-a"
    )
    labelled = {"argocd.argoproj.io/instance": "shop"}
    assert gitops_owner(labelled, {}, namespace="prod") is not None


def test_flux_by_its_controllers_labels() -> None:
    labels = {
        "kustomize.toolkit.fluxcd.io/name": "apps",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
    }
    assert gitops_owner(labels, {}, namespace="prod") == GitOpsOwner(
        "Flux", "Kustomization", "apps", "flux-system"
    )
    helm = {"helm.toolkit.fluxcd.io/name": "web"}
    assert gitops_owner(helm, {}, namespace="prod") == GitOpsOwner(
        "Flux", "HelmRelease", "web", "prod"
    )
    assert gitops_owner({"app": "web"}, {}, namespace="prod") is None


ARGO = GitOpsOwner("Argo CD", "Application", "shop", "argocd")
FLUX = GitOpsOwner("Flux", "Kustomization", "apps", "flux-system")


def test_suspending_and_restoring_argo_cd_self_heal() -> None:
    app = {"spec": {"syncPolicy": {"automated": {"prune": True, "selfHeal": True}}}}
    ops, before, after = suspension(ARGO, app)
    assert (before, after) == ({"selfHeal": True}, {"selfHeal": False})
    assert ops[-1] == {
        "op": "replace",
        "path": "/spec/syncPolicy/automated/selfHeal",
        "value": False,
    }
    suspended = {"spec": {"syncPolicy": {"automated": {"prune": True, "selfHeal": False}}}}
    ops, _, restored = restoration(ARGO, suspended, before)
    assert restored == {"selfHeal": True} and ops[-1]["value"] is True
    with pytest.raises(ActionRefused, match="does not self-heal"):
        suspension(ARGO, {"spec": {"syncPolicy": {}}})
    with pytest.raises(ActionRefused, match="changed since"):
        restoration(ARGO, app, before)  # someone turned it back on: left alone


def test_suspending_and_restoring_flux() -> None:
    _, before, after = suspension(FLUX, {"spec": {"interval": "1m"}})
    assert (before, after) == ({"suspend": False}, {"suspend": True})
    ops, _, restored = restoration(FLUX, {"spec": {"suspend": True}}, before)
    assert restored == {"suspend": False}
    assert ops[-1] == {"op": "replace", "path": "/spec/suspend", "value": False}
    with pytest.raises(ActionRefused, match="resumed since"):
        restoration(FLUX, {"spec": {"suspend": False}}, before)
