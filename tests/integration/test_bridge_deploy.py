"""The bridge as it is deployed: the `mitigator bridge` command (HTTPS, token file, clean
exit on SIGTERM), the shipped RBAC (enough to do the job, and no more), the shipped
Deployment manifest, and the bridge inside the operator's process."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client, config

from localkube.certs import generate_pki
from localkube.processes import ManagedProcess, free_port, wait_until
from localkube.testing import ClusterAccess
from mitigator.bridge.identity import group_hash, incident_name
from mitigator.cli import build_parser
from tests.support.bridge import (
    TOKEN,
    RunningBridge,
    alert,
    bridge_settings,
    list_incidents,
    webhook,
)
from tests.support.kube import kube_client
from tests.support.objects import GROUP, VERSION
from tests.support.world import OperatorBridge

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
BASE = ROOT / "config" / "base"
CLUSTER_WIDE = ROOT / "config" / "overlays" / "cluster-wide"


def _bridge_account() -> dict[str, Any]:
    [account] = [
        doc
        for doc in yaml.safe_load_all((BASE / "serviceaccounts.yaml").read_text())
        if doc["metadata"]["name"] == "mitigator-bridge"
    ]
    return dict(account)


def _clean_environment(cluster: ClusterAccess) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MITIGATOR_BRIDGE_")}
    env["PYTHONPATH"] = os.pathsep.join(str(ROOT / part) for part in ("operator", "tools"))
    env["KUBECONFIG"] = str(cluster.kubeconfig)
    return env


def _post(url: str, payload: Any, *, context: ssl.SSLContext | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_command_serves_https_with_a_token_file_and_stops_on_sigterm(
    cluster: ClusterAccess,
    crds: None,
    api_client: client.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    pki = generate_pki(tmp_path / "pki")
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    port = free_port()
    process = ManagedProcess(
        name="mitigator-bridge",
        argv=[
            sys.executable,
            "-m",
            "mitigator",
            "bridge",
            f"--port={port}",
            f"--token-file={token_file}",
            f"--tls-cert={pki.serving_cert}",
            f"--tls-key={pki.serving_key}",
            "--namespace=mt-*",
        ],
        log_path=tmp_path / "bridge.log",
        env=_clean_environment(cluster),
    )
    process.start()
    try:
        tls = ssl.create_default_context(cafile=str(pki.ca_cert))
        base = f"https://127.0.0.1:{port}"

        def healthy() -> bool:
            with urllib.request.urlopen(f"{base}/healthz", timeout=5, context=tls) as response:
                return bool(response.status == 200)

        wait_until(healthy, timeout=30, what=f"the bridge on {base}: {process.log_tail()}")
        status, body = _post(f"{base}/api/v1/alerts", webhook(alert(namespace)), context=tls)
        assert status == 200, body
        assert body["incidents"][0]["result"] == "created"
        assert len(list_incidents(api_client, namespace)) == 1
        # Plain HTTP on the TLS port gets nowhere.
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            _post(f"http://127.0.0.1:{port}/api/v1/alerts", webhook(alert(namespace)))

        os.kill(process.pid, signal.SIGTERM)
        assert process.popen is not None
        assert process.popen.wait(timeout=30) == 0, process.log_tail()
    finally:
        process.stop()
    assert "listening on 127.0.0.1" in process.log_tail(50)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "no bearer token"),
        (["--token-file=/nonexistent"], "cannot read the token file"),
        (["--tls-cert=/x.pem"], "--tls-cert and --tls-key go together"),
    ],
)
def test_the_command_refuses_to_start_without_what_it_needs(
    cluster: ClusterAccess, argv: list[str], message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mitigator", "bridge", f"--port={free_port()}", *argv],
        env=_clean_environment(cluster),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr


# ----------------------------------------------------------------- RBAC


def _kubectl(cluster: ClusterAccess, *argv: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        ["kubectl", *argv],
        input=stdin,
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        capture_output=True,
        text=True,
        check=False,
    )
    # `kubectl auth can-i` answers "no" with exit code 1.
    assert result.returncode == 0 or argv[:2] == ("auth", "can-i"), result.stderr
    return result.stdout.strip()


def _rbac_in(namespace: str) -> list[dict[str, Any]]:
    """config/overlays/cluster-wide/bridge-rbac.yaml and the bridge's ServiceAccount, moved
    into a test namespace (cluster-scoped names get the namespace as suffix so that the suite
    leaves the cluster as it found it)."""
    rbac = yaml.safe_load_all((CLUSTER_WIDE / "bridge-rbac.yaml").read_text())
    docs = [_bridge_account(), *(doc for doc in rbac if doc)]
    cluster_name = f"mitigator-bridge-{namespace}"
    for doc in docs:
        if doc["kind"] == "ServiceAccount":
            doc["metadata"]["namespace"] = namespace
        else:
            doc["metadata"]["name"] = cluster_name
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] = cluster_name
            for subject in doc["subjects"]:
                subject["namespace"] = namespace
    return docs


def test_the_shipped_rbac_is_enough_and_no_more(
    cluster: ClusterAccess, crds: None, api_client: client.ApiClient, namespace: str
) -> None:
    docs = _rbac_in(namespace)
    [role] = [doc for doc in docs if doc["kind"] == "ClusterRole"]
    assert role["rules"] == [
        {
            "apiGroups": ["mitigator.luminamind.io"],
            "resources": ["incidents"],
            "verbs": ["create", "get", "list", "patch"],
        },
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
        {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get"]},
    ]
    user = f"system:serviceaccount:{namespace}:mitigator-bridge"
    cluster_name = f"mitigator-bridge-{namespace}"
    _kubectl(cluster, "apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
    try:

        def can(verb: str, resource: str, *flags: str) -> bool:
            argv = ("auth", "can-i", f"--as={user}", "-n", namespace, verb, resource, *flags)
            return _kubectl(cluster, *argv) == "yes"

        incidents = "incidents.mitigator.luminamind.io"
        wait_until(lambda: can("create", incidents), timeout=30, what="the binding to apply")
        for verb in ("get", "list", "patch"):
            assert can(verb, incidents), verb
        for verb, resource, *flags in (
            ("delete", incidents),
            ("update", incidents),
            ("watch", incidents),
            ("patch", incidents, "--subresource=status"),
            ("get", "secrets"),
            ("list", "deployments.apps"),
        ):
            assert not can(verb, resource, *flags), (verb, resource)

        # The bridge, as that ServiceAccount, does all of its job.
        configuration = client.Configuration()
        config.load_kube_config(str(cluster.kubeconfig), client_configuration=configuration)  # type: ignore[no-untyped-call]
        as_bridge = client.ApiClient(configuration)
        as_bridge.set_default_header("Impersonate-User", user)  # type: ignore[no-untyped-call]
        with RunningBridge(kube_client(as_bridge), bridge_settings()) as running:
            a = alert(namespace, fingerprint="1111111111111111")
            b = alert(namespace, fingerprint="2222222222222222")
            key = "{}:{rbac-test}"
            steps = [
                webhook(a, group_key=key),  # create
                webhook(a, group_key=key),  # list: unchanged
                webhook(a, b, group_key=key),  # list + patch
                webhook(
                    {**a, "status": "resolved", "endsAt": a["startsAt"][:-1] + ".5Z"},
                    b,
                    group_key=key,
                ),
            ]
            answers = [running.post(step) for step in steps]
            assert [status for status, _ in answers] == [200] * 4, answers
            assert [body["incidents"][0]["result"] for _, body in answers] == [
                "created",
                "unchanged",
                "updated",
                "updated",
            ]
            # An Incident of the same name made by someone else: read (get) and refused.
            taken = webhook(alert(namespace, "api"))
            name = incident_name("api", group_hash(taken["groupKey"], namespace, "api"))
            client.CustomObjectsApi(api_client).create_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                "incidents",
                {
                    "kind": "Incident",
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "metadata": {"name": name},
                    # Another target: an open Incident of `api` itself would take the alert.
                    "spec": {"target": {"name": "db"}},
                },
            )
            status, body = running.post(taken)
            assert status == 422 and body["error"] == "refused_by_api_server", body

            # Without its binding the bridge is forbidden: a 503, so Alertmanager retries.
            _kubectl(cluster, "delete", "clusterrolebinding", cluster_name)
            wait_until(lambda: not can("create", incidents), timeout=30, what="the unbinding")
            status, body = running.post(webhook(alert(namespace, "worker")))
            assert status == 503, body
            assert "HTTP 403" in body["message"]
    finally:
        _kubectl(
            cluster, "delete", "--ignore-not-found", "clusterrolebinding,clusterrole", cluster_name
        )
    assert len(list_incidents(api_client, namespace)) == 2


def test_the_bridge_deployment_manifest_is_accepted_and_agrees_with_the_command(
    cluster: ClusterAccess, namespace: str
) -> None:
    docs = [
        yaml.safe_load((BASE / name).read_text())
        for name in ("bridge-deployment.yaml", "bridge-service.yaml")
    ]
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
    _kubectl(cluster, "apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump_all(docs))

    [deployment] = [doc for doc in docs if doc["kind"] == "Deployment"]
    [service] = [doc for doc in docs if doc["kind"] == "Service"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    args = build_parser().parse_args(container["args"])
    assert args.command == "bridge"
    assert args.host == "0.0.0.0"
    [port] = container["ports"]
    assert args.port == port["containerPort"]
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "token"]
    assert Path(args.token_file).parent == Path(mount["mountPath"])
    assert pod["serviceAccountName"] == _bridge_account()["metadata"]["name"]
    route = yaml.safe_load((MANIFESTS / "alertmanager-route.yaml").read_text())
    [receiver] = [r for r in route["receivers"] if r["name"] == "mitigator-bridge"]
    url = receiver["webhook_configs"][0]["url"]
    assert url == (
        f"http://{service['metadata']['name']}.mitigator-system.svc:"
        f"{service['spec']['ports'][0]['port']}/api/v1/alerts"
    )


# ----------------------------------------------------------------- inside the operator


@pytest.mark.usefixtures("operator")
def test_the_operator_runs_the_bridge_and_handles_what_it_creates(
    bridge: OperatorBridge, api_client: client.ApiClient, namespace: str
) -> None:
    def listening() -> bool:
        url = f"http://127.0.0.1:{bridge.port}/healthz"
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)

    wait_until(listening, timeout=60, what="the operator's bridge to listen")
    request = urllib.request.Request(
        bridge.url,
        data=json.dumps(webhook(alert(namespace, "web"))).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {bridge.token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        [created] = json.loads(response.read())["incidents"]

    def picked_up() -> bool:
        custom = client.CustomObjectsApi(api_client)
        incident = cast(
            dict[str, Any],
            custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, "incidents", created["name"]
            ),
        )
        return bool((incident.get("status") or {}).get("phase"))

    wait_until(picked_up, timeout=60, what="the operator to take up the bridge's Incident")


def test_an_operator_whose_bridge_cannot_listen_stops_instead_of_hanging(
    cluster: ClusterAccess, crds: None, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **_clean_environment(cluster),
            "MITIGATOR_BRIDGE_PORT": str(port),
            "MITIGATOR_BRIDGE_TOKEN": TOKEN,
        }
        argv = ["run", "--standalone", "--namespace", "bt-never-*"]
        result = subprocess.run(
            [sys.executable, "-m", "mitigator", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode != 0
    assert f"the Alertmanager bridge cannot listen on 127.0.0.1:{port}" in result.stderr
