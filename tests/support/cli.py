"""The incident CLI as a user runs it (a subprocess, `python -m mitigator`), the approval
policy of config/approval/ installed for one namespace, and kubeconfigs of ServiceAccounts
with chosen rights (issue 15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from localkube.processes import wait_until
from localkube.testing import ClusterAccess
from tests.support.world import ROOT, kubectl

APPROVAL = ROOT / "config" / "approval"
GROUP = "mitigator.luminamind.io"


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def cli_environment() -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "NO_COLOR")}
    return {
        **inherited,
        "PYTHONPATH": os.pathsep.join(str(ROOT / part) for part in ("operator", "tools", ".")),
    }


def run_cli(*argv: str, kubeconfig: Path | None, timeout: float = 60) -> Result:
    """`mitigator ARGV…` in its own process, with this kubeconfig (and no KUBECONFIG)."""
    options = ["--kubeconfig", str(kubeconfig)] if kubeconfig is not None else []
    done = subprocess.run(
        [sys.executable, "-m", "mitigator", *argv, *options],
        env=cli_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def service_account_kubeconfig(
    cluster: ClusterAccess,
    api_client: client.ApiClient,
    *,
    namespace: str,
    name: str,
    rules: list[dict[str, Any]],
    destination: Path,
) -> Path:
    """A ServiceAccount bound to a Role of these rules, and a kubeconfig with its token
    whose context's namespace is `namespace` (so commands default to it, as kubectl does)."""
    core, rbac = client.CoreV1Api(api_client), client.RbacAuthorizationV1Api(api_client)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    rbac.create_namespaced_role(namespace, {"metadata": {"name": name}, "rules": rules})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    )
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    token = core.create_namespaced_service_account_token(name, namespace, request).status.token
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": name, "user": {"token": token}}]
    config["contexts"] = [
        {"name": name, "context": {"cluster": "localkube", "user": name, "namespace": namespace}}
    ]
    config["current-context"] = name
    destination.write_text(yaml.safe_dump(config))
    return destination


def incident_rules(*verbs: str) -> list[dict[str, Any]]:
    return [{"apiGroups": [GROUP], "resources": ["incidents"], "verbs": list(verbs)}]


def install_approval_policy(cluster: ClusterAccess, namespace: str, *, probe: str) -> str:
    """config/approval/'s policy as shipped, its binding as shipped but limited to
    `namespace` (the control plane is shared with tests that set spec.approved as admin).
    Waits until the API server enforces it: a server-side dry run that forges
    spec.approvedBy on the Incident `probe` is refused. Returns the binding's name."""
    kubectl(cluster, "apply", "-f", str(APPROVAL / "policy.yaml"))
    binding = yaml.safe_load((APPROVAL / "binding.yaml").read_text())
    binding["metadata"]["name"] = f"{binding['metadata']['name']}-{namespace}"
    binding["spec"]["matchResources"] = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    }
    kubectl(cluster, "apply", "-f", "-", stdin=json.dumps(binding))

    def enforced() -> bool:
        try:
            kubectl(
                cluster,
                "patch",
                "incident",
                probe,
                "-n",
                namespace,
                "--type=merge",
                "--dry-run=server",
                "-p",
                '{"spec": {"approvedBy": "somebody-else"}}',
            )
        except AssertionError as refused:
            return "approvedBy can only be set to the caller" in str(refused)
        return False

    wait_until(enforced, timeout=30, what="the approval policy to be enforced")
    return str(binding["metadata"]["name"])
