"""The incident commands as a person runs them (each a subprocess), against the real API
server, the session's operator and config/approval/'s ValidatingAdmissionPolicy: who approves
and who resolves is the caller as the API server sees them, and approving needs the
`approve` verb that editing an Incident does not give."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from localkube.processes import free_port, wait_until
from localkube.testing import ClusterAccess
from tests.support.cli import (
    cli_environment,
    incident_rules,
    install_approval_policy,
    run_cli,
    service_account_kubeconfig,
)
from tests.support.kube import deployment_manifest, wait_rollout
from tests.support.objects import Resources, incident_manifest, policy_manifest
from tests.support.responder import Responder
from tests.support.world import kubectl

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator")]

HEALTHY, SLOW = (0.0, 0.2), (0.0, 25.0)
EDIT = ("get", "list", "watch", "patch", "update")


@pytest.fixture
def approval(
    cluster: ClusterAccess, api_client: client.ApiClient, namespace: str
) -> Iterator[None]:
    Resources(api_client, namespace).create(incident_manifest("probe", target="nothing-here"))
    binding = install_approval_policy(cluster, namespace, probe="probe")
    yield
    kubectl(cluster, "delete", "validatingadmissionpolicybinding", binding, "--wait=false")


@pytest.fixture
def editor(
    cluster: ClusterAccess, api_client: client.ApiClient, namespace: str, tmp_path: Path
) -> Path:
    """May edit Incidents (get, list, patch, update) but has no `approve` verb."""
    return service_account_kubeconfig(
        cluster,
        api_client,
        namespace=namespace,
        name="editor",
        rules=incident_rules(*EDIT),
        destination=tmp_path / "editor.kubeconfig",
    )


@pytest.fixture
def approver(
    cluster: ClusterAccess, api_client: client.ApiClient, namespace: str, tmp_path: Path
) -> Path:
    return service_account_kubeconfig(
        cluster,
        api_client,
        namespace=namespace,
        name="approver",
        rules=incident_rules(*EDIT, "approve"),
        destination=tmp_path / "approver.kubeconfig",
    )


@pytest.fixture
def people(editor: Path, approver: Path) -> tuple[Path, Path]:
    return editor, approver


def _deploy_gated(api_client: client.ApiClient, namespace: str) -> Resources:
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment_manifest("web", replicas=2))
    wait_rollout(apps, namespace, "web")
    resources = Resources(api_client, namespace)
    resources.create(
        policy_manifest(
            "gated",
            app="web",
            rules=[{"name": "scale", "actions": [{"scale": {"replicas": 3}}]}],
            guardrails={"requireApprovalFor": ["scale"]},
        )
    )
    return resources


def _scaled(dep: dict[str, Any]) -> tuple[float, float]:
    return HEALTHY if dep["spec"]["replicas"] >= 3 else SLOW


@pytest.mark.usefixtures("approval")
def test_approving_needs_the_verb_and_records_the_caller(
    api_client: client.ApiClient,
    cluster: ClusterAccess,
    namespace: str,
    signals: Any,
    people: tuple[Path, Path],
) -> None:
    editor, approver = people
    resources = _deploy_gated(api_client, namespace)
    with Responder(api_client, signals, namespace=namespace, name="web", health=_scaled):
        resources.create(incident_manifest("gated", target="web"))
        resources.wait_phase("gated", "AwaitingApproval")

        # Editing rights are not approving rights: the API server refuses, the CLI says why.
        refused = run_cli("approve", "gated", kubeconfig=editor)
        assert refused.code == 1, refused
        assert 'needs the verb "approve"' in refused.err
        assert "system:serviceaccount:" + namespace + ":editor" in refused.err
        assert "Traceback" not in refused.err
        assert resources.incident("gated")["spec"]["approved"] is False

        # Nobody, not even an admin, records someone else's name.
        with pytest.raises(AssertionError, match=r"spec\.approvedBy must name who approves"):
            kubectl(
                cluster,
                "patch",
                "incident",
                "gated",
                "-n",
                namespace,
                "--type=merge",
                "-p",
                '{"spec": {"approved": true, "approvedBy": "someone-else"}}',
            )

        approved = run_cli("approve", "gated", "-o", "json", kubeconfig=approver)
        assert approved.code == 0, approved.err
        user = f"system:serviceaccount:{namespace}:approver"
        assert approved.json()["spec"]["approvedBy"] == user
        assert approved.json()["spec"]["approvedAt"]
        incident = resources.wait_phase("gated", "Resolved", "Escalated", "Failed")
    assert incident["status"]["phase"] == "Resolved", incident["status"].get("message")
    [entry] = [e for e in incident["status"]["timeline"] if e["event"] == "Approved"]
    assert f"approved by {user}" in entry["message"]

    as_json = run_cli("describe", "gated", "-o", "json", kubeconfig=approver)
    assert as_json.code == 0, as_json.err
    assert as_json.json()["status"]["actions"] == incident["status"]["actions"]
    assert as_json.json()["spec"]["approvedBy"] == user

    described = run_cli("describe", "gated", kubeconfig=approver)
    assert described.code == 0, described.err
    assert f"Approved:   by {user}" in described.out
    assert "\033[" not in described.out  # piped: plain text
    for line in ("Classification:", "Actions:", "Verification:", "Timeline (UTC):"):
        assert line in described.out
    assert "before: replicas=2" in described.out

    listed = run_cli("incidents", "-o", "json", kubeconfig=approver)
    assert listed.code == 0, listed.err
    by_name = {entry["name"]: entry for entry in listed.json()}
    row = by_name["gated"]
    assert (row["namespace"], row["phase"], row["target"]) == (namespace, "Resolved", "web")
    status = incident["status"]
    assert row["severity"] == status["severity"]
    assert row["timeToMitigateSeconds"] is not None and row["timeToMitigateSeconds"] >= 0

    everywhere = run_cli("incidents", "-A", "-o", "yaml", kubeconfig=cluster.kubeconfig)
    assert everywhere.code == 0, everywhere.err
    assert {"namespace": namespace, "name": "gated"}.items() <= next(
        e for e in yaml.safe_load(everywhere.out) if e["name"] == "gated"
    ).items()

    table = run_cli("incidents", kubeconfig=approver)
    assert table.code == 0, table.err
    header, *rows = table.out.splitlines()
    assert header.split()[:4] == ["NAME", "AGE", "SEVERITY", "PHASE"]
    assert any(r.split()[0] == "gated" and "Resolved" in r.split() for r in rows)


@pytest.mark.usefixtures("approval")
def test_resolving_records_who_resolved(
    api_client: client.ApiClient, namespace: str, editor: Path, tmp_path: Path
) -> None:
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment_manifest("lonely", replicas=1))
    resources = Resources(api_client, namespace)
    # No policy covers it: the operator escalates, and a person closes it.
    resources.create(incident_manifest("orphan", target="lonely"))
    resources.wait_phase("orphan", "Escalated")
    done = run_cli("resolve", "orphan", "-o", "yaml", kubeconfig=editor)
    assert done.code == 0, done.err
    user = f"system:serviceaccount:{namespace}:editor"
    assert yaml.safe_load(done.out)["spec"]["resolvedBy"] == user
    incident = resources.wait_phase("orphan", "Resolved")
    assert any(
        e["event"] == "Resolved" and f"resolved by {user}" in e["message"]
        for e in incident["status"]["timeline"]
    )
    again = run_cli("resolve", "orphan", kubeconfig=editor)
    assert (again.code, again.out.strip()) == (0, f"incident {namespace}/orphan: already Resolved")


def test_errors_are_one_clear_line(cluster: ClusterAccess, namespace: str, tmp_path: Path) -> None:
    admin = cluster.kubeconfig
    for argv in (
        ["describe", "ghost"],
        ["approve", "ghost"],
        ["resolve", "ghost"],
        ["postmortem", "ghost", "--prometheus-url", "http://127.0.0.1:1"],
    ):
        missing = run_cli(*argv, "-n", namespace, kubeconfig=admin)
        assert missing.code == 1, missing
        assert missing.err.strip() == (
            f"mitigator {argv[0]}: Incident {namespace}/ghost not found"
        ), missing.err

    nowhere = yaml.safe_load(admin.read_text())
    nowhere["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    unreachable = tmp_path / "unreachable.kubeconfig"
    unreachable.write_text(yaml.safe_dump(nowhere))
    for argv in (
        ["incidents"],
        ["describe", "x"],
        ["approve", "x"],
        ["resolve", "x"],
        ["postmortem", "x"],
        ["drill", "p", "--target", "x"],
    ):
        down = run_cli(*argv, kubeconfig=unreachable)
        assert down.code == 1, down
        assert "cannot reach the Kubernetes API server" in down.err, down.err
        assert "Traceback" not in down.err
        assert len(down.err.strip().splitlines()) == 1

    wrong = run_cli("incidents", "--context", "nope", kubeconfig=admin)
    assert (wrong.code, wrong.err.strip()) == (
        1,
        "mitigator incidents: context 'nope' not found (contexts: localkube)",
    )


def test_kubectl_runs_it_as_a_plugin(
    cluster: ClusterAccess, namespace: str, tmp_path: Path
) -> None:
    """kubectl finds `kubectl-mitigator` on the PATH (what the console script installs)."""
    plugin = tmp_path / "bin" / "kubectl-mitigator"
    plugin.parent.mkdir()
    plugin.write_text(f'#!/bin/sh\nexec {sys.executable} -m mitigator "$@"\n')
    plugin.chmod(plugin.stat().st_mode | stat.S_IEXEC)
    env = {
        **cli_environment(),
        "PATH": f"{plugin.parent}{os.pathsep}{os.environ['PATH']}",
        "KUBECONFIG": str(cluster.kubeconfig),
    }
    done = subprocess.run(
        ["kubectl", "mitigator", "incidents", "-n", namespace, "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr


def test_a_drill_prints_the_plan_and_touches_nothing(
    api_client: client.ApiClient,
    cluster: ClusterAccess,
    namespace: str,
    webhook_receiver: tuple[str, list[Any]],
) -> None:
    url, received = webhook_receiver
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment_manifest("web", replicas=2))
    wait_rollout(apps, namespace, "web")
    resources = Resources(api_client, namespace)
    resources.create(
        policy_manifest(
            "runbooks",
            app="web",
            rules=[{"name": "any", "actions": [{"rollback": {}}, {"scale": {"increment": 2}}]}],
            escalation=[{"after": "0s", "level": 1, "name": "on-call", "webhook": url}],
        )
    )
    before = apps.read_namespaced_deployment("web", namespace).metadata.resource_version

    done = run_cli(
        "drill", "runbooks", "--target", "web", "-n", namespace, kubeconfig=cluster.kubeconfig
    )
    assert done.code == 0, done.err
    assert "Dry run: nothing was changed" in done.out
    assert "Rule: any" in done.out
    assert "1. 0-rollback: rollback()" in done.out
    assert "2. 1-scale: scale(increment=2)" in done.out
    assert "Escalation: level 1 on-call after 0s" in done.out
    assert apps.read_namespaced_deployment("web", namespace).metadata.resource_version == before
    [drill] = [
        i
        for i in Resources(api_client, namespace).custom.list_namespaced_custom_object(
            "mitigator.luminamind.io", "v1alpha1", namespace, "incidents"
        )["items"]
    ]
    assert drill["spec"]["source"]["type"] == "drill" and drill["spec"]["dryRun"] is True
    assert all(a["state"] == "DryRun" for a in drill["status"]["actions"])

    # Pages nobody: an ordinary dry run after it is paged by the same timer, the drill is not.
    resources.create(incident_manifest("rehearsal", target="web", dryRun=True))
    wait_until(lambda: received, timeout=30, what="the ordinary dry run to be paged")
    assert {r["payload"]["incident"]["name"] for r in received} == {"rehearsal"}
    assert not (resources.incident(drill["metadata"]["name"])["status"].get("escalation"))

    missing = run_cli(
        "drill", "nope", "--target", "web", "-n", namespace, kubeconfig=cluster.kubeconfig
    )
    assert (missing.code, missing.err.strip()) == (
        1,
        f"mitigator drill: MitigationPolicy {namespace}/nope not found",
    )
