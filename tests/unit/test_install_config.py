"""The install tree (config/) and the leader-election settings, without a server: what the
overlays grant agrees between them, the shipped Deployments agree with the command line and
with the Lease rules, and Lease timings that could allow two actors are refused."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from mitigator.cli import build_parser
from mitigator.settings import OperatorSettings

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _one(path: Path, kind: str, name: str) -> dict[str, Any]:
    [doc] = [d for d in _docs(path) if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("MITIGATOR_")]:
        monkeypatch.delenv(name)


def test_the_namespaced_roles_are_the_cluster_wide_rules_without_the_cluster_scoped_ones() -> None:
    cluster_wide = CONFIG / "overlays" / "cluster-wide"
    watched = CONFIG / "overlays" / "namespaced" / "watch-luminamind" / "rbac.yaml"
    operator = _one(cluster_wide / "operator-rbac.yaml", "ClusterRole", "mitigator-operator")
    cluster_scoped = {"namespaces", "customresourcedefinitions"}
    expected = [r for r in operator["rules"] if not cluster_scoped & set(r["resources"])]
    assert _one(watched, "Role", "mitigator-operator")["rules"] == expected
    bridge = _one(cluster_wide / "bridge-rbac.yaml", "ClusterRole", "mitigator-bridge")
    assert _one(watched, "Role", "mitigator-bridge")["rules"] == bridge["rules"]
    # Nothing either identity gets deletes anything but the isolation NetworkPolicy it made
    # (removed on resolve), or touches a Secret at all: the Secrets policies name are granted
    # by name, per namespace (config/policy-secrets).
    for role in (operator, bridge):
        for rule in role["rules"]:
            assert "deletecollection" not in rule["verbs"]
            assert "delete" not in rule["verbs"] or rule["resources"] == ["networkpolicies"]
            assert "secrets" not in rule["resources"], rule
            assert "*" not in rule["resources"] and "*" not in rule["verbs"], rule


def test_the_policy_secrets_grant_gets_named_secrets_only_and_is_not_installed() -> None:
    grant = CONFIG / "policy-secrets"
    kustomization = yaml.safe_load((grant / "kustomization.yaml").read_text())
    assert kustomization["namespace"] and kustomization["resources"] == ["rbac.yaml"]
    role = _one(grant / "rbac.yaml", "Role", "mitigator-policy-secrets")
    [rule] = role["rules"]
    assert rule["apiGroups"] == [""] and rule["resources"] == ["secrets"]
    assert rule["verbs"] == ["get"] and rule["resourceNames"]
    binding = _one(grant / "rbac.yaml", "RoleBinding", "mitigator-policy-secrets")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "mitigator-policy-secrets",
    }
    # Bound to the operator's ServiceAccount as the base creates it.
    operator_sa = _one(CONFIG / "base" / "serviceaccounts.yaml", "ServiceAccount", "mitigator")
    sa = operator_sa["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["name"], "namespace": sa["namespace"]}
    ]
    # A team's own step: neither the base nor an overlay pulls it in.
    for path in CONFIG.glob("**/kustomization.yaml"):
        assert "policy-secrets" not in path.read_text() or path.parent == grant, path


def test_every_crd_file_is_in_the_crds_kustomization() -> None:
    kustomization = yaml.safe_load((ROOT / "crds" / "kustomization.yaml").read_text())
    files = sorted(p.name for p in (ROOT / "crds").glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kustomization["resources"]) == files


@pytest.mark.usefixtures("clean_environment")
def test_the_operator_deployment_runs_the_command_with_leader_election_as_the_rbac_allows() -> None:
    deployment = _one(CONFIG / "base" / "operator-deployment.yaml", "Deployment", "mitigator")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    args = build_parser().parse_args(container["args"])
    assert args.command == "run" and not args.namespace  # cluster-wide in the base
    assert deployment["spec"]["replicas"] == 2
    env = {e["name"]: e for e in container["env"]}
    assert env["MITIGATOR_LEASE_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.namespace"
    )
    values = {name: e["value"] for name, e in env.items() if "value" in e}
    settings = OperatorSettings(
        lease_duration_seconds=int(values["MITIGATOR_LEASE_DURATION_SECONDS"]),
        renew_deadline_seconds=float(values["MITIGATOR_RENEW_DEADLINE_SECONDS"]),
        retry_period_seconds=float(values["MITIGATOR_RETRY_PERIOD_SECONDS"]),
    )
    assert settings.leader_election
    role = _one(CONFIG / "base" / "leader-election-rbac.yaml", "Role", "mitigator-leader-election")
    [rule] = role["rules"]
    assert rule["resources"] == ["leases"] and set(rule["verbs"]) == {"get", "create", "update"}
    # Restricted Pod Security, probes, requests and limits on both Deployments.
    for name in ("operator-deployment.yaml", "bridge-deployment.yaml"):
        [doc] = _docs(CONFIG / "base" / name)
        spec = doc["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in spec["containers"]:
            assert c["securityContext"] == {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            }
            assert c["readinessProbe"] and c["livenessProbe"]
            assert c["resources"]["requests"] and c["resources"]["limits"]


@pytest.mark.usefixtures("clean_environment")
def test_leader_election_defaults_are_controller_runtimes() -> None:
    settings = OperatorSettings()
    assert settings.leader_election
    assert (
        settings.lease_duration_seconds,
        settings.renew_deadline_seconds,
        settings.retry_period_seconds,
    ) == (15, 10.0, 2.0)


@pytest.mark.usefixtures("clean_environment")
@pytest.mark.parametrize(
    ("lease", "renew", "retry", "message"),
    [
        (10, 10.0, 2.0, "renew_deadline_seconds must be shorter than lease_duration_seconds"),
        (10, 12.0, 2.0, "renew_deadline_seconds must be shorter than lease_duration_seconds"),
        (15, 5.0, 5.0, "retry_period_seconds must be shorter than renew_deadline_seconds"),
    ],
)
def test_timings_that_could_let_two_replicas_act_are_refused(
    lease: int, renew: float, retry: float, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        OperatorSettings(
            lease_duration_seconds=lease, renew_deadline_seconds=renew, retry_period_seconds=retry
        )
