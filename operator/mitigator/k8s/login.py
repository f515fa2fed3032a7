"""Where the API server is and who we are, read without the kubernetes package: the pod's
ServiceAccount when there is one (as the client's load_incluster_config read it), else the
kubeconfig's current context (KUBECONFIG, else ~/.kube/config).

Covers what an operator's and a bridge's deployment use: a ServiceAccount token, client
certificates, a bearer token or token file, basic auth, a CA or insecure-skip-tls-verify.
An `exec` or `auth-provider` plugin that must run to get a token is not run (an
auth-provider's cached access-token is used, as kopf does): the command line's kubeconfig
reader (mitigator.k8s.connect) handles those."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from mitigator.k8s.transport import Endpoint, basic_authorization

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_KUBECONFIG = "~/.kube/config"


class LoginError(RuntimeError):
    """No usable ServiceAccount or kubeconfig; the message says why (never a secret)."""


def from_environment(kubeconfig: str | None = None) -> Endpoint:
    """The ServiceAccount in a pod, else the kubeconfig (`kubeconfig`, else KUBECONFIG,
    else ~/.kube/config). Read again at every call: a rotated token is picked up."""
    return from_service_account() or from_kubeconfig(kubeconfig)


def from_service_account(
    directory: Path = SERVICE_ACCOUNT, environ: dict[str, str] | None = None
) -> Endpoint | None:
    """The pod's ServiceAccount, or None outside a pod (no service address in the
    environment or no token mounted)."""
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    token_file = directory / "token"
    if not host or not port or not token_file.exists():
        return None
    token = token_file.read_text().strip()
    if not token:
        raise LoginError(f"the ServiceAccount token {token_file} is empty")
    ca = directory / "ca.crt"
    return Endpoint(
        server=f"https://{f'[{host}]' if ':' in host else host}:{port}",
        ca_path=str(ca) if ca.exists() else None,
        authorization=f"Bearer {token}",
    )


def from_kubeconfig(kubeconfig: str | None = None) -> Endpoint:
    """The current context of the kubeconfig: a list of files (os.pathsep) merged, the
    first file to name a context, cluster or user wins; relative paths are relative to
    the file that holds them."""
    where = kubeconfig or os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG
    paths = [Path(p.strip()).expanduser() for p in where.split(os.pathsep) if p.strip()]
    current: str | None = None
    named: dict[str, dict[str, tuple[dict[str, Any], Path]]] = {
        "contexts": {},
        "clusters": {},
        "users": {},
    }
    for path in paths:
        config = yaml.safe_load(path.read_text()) or {}
        current = current or config.get("current-context")
        for section, items in named.items():
            for item in config.get(section) or []:
                body = item.get(section[:-1]) or {}
                items.setdefault(item["name"], (body, path.parent))
    if not current:
        raise LoginError(f"kubeconfig {where}: no current-context")
    if current not in named["contexts"]:
        raise LoginError(f"kubeconfig {where}: context {current!r} not found")
    context, _ = named["contexts"][current]
    cluster_name, user_name = context.get("cluster"), context.get("user")
    if cluster_name not in named["clusters"]:
        raise LoginError(f"kubeconfig {where}: cluster {cluster_name!r} not found")
    cluster, cluster_dir = named["clusters"][cluster_name]
    user, user_dir = named["users"].get(user_name or "", ({}, Path()))
    if not cluster.get("server"):
        raise LoginError(f"kubeconfig {where}: cluster {cluster_name!r} names no server")
    if user.get("exec"):
        raise LoginError(
            f"kubeconfig {where}: user {user_name!r} needs an exec plugin, which only the "
            "command line runs; give the operator a token or a client certificate"
        )
    return Endpoint(
        server=str(cluster["server"]),
        ca_path=_file(cluster.get("certificate-authority"), cluster_dir),
        ca_data=cluster.get("certificate-authority-data"),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        certificate_path=_file(user.get("client-certificate"), user_dir),
        certificate_data=user.get("client-certificate-data"),
        private_key_path=_file(user.get("client-key"), user_dir),
        private_key_data=user.get("client-key-data"),
        authorization=_authorization(user, user_dir),
    )


def _authorization(user: dict[str, Any], directory: Path) -> str | None:
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(str(_file(user["tokenFile"], directory))).read_text().strip()
    if not token:
        token = ((user.get("auth-provider") or {}).get("config") or {}).get("access-token")
    if token:
        return f"Bearer {token}"
    if user.get("username") and user.get("password"):
        return basic_authorization(str(user["username"]), str(user["password"]))
    return None


def _file(value: object, directory: Path) -> str | None:
    if not value:
        return None
    return str(directory / Path(str(value)).expanduser())
