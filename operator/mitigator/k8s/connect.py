"""Connecting the way kubectl does, for the command line: the kubeconfig (``--kubeconfig``,
else KUBECONFIG, else ~/.kube/config), a context (``--context``, else the current one), and
that context's namespace as the default; in a pod without a kubeconfig, the ServiceAccount."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config

from mitigator.k8s.client import KubeClient

_IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class KubeconfigError(RuntimeError):
    """No usable kubeconfig or context; the message says which and why."""


@dataclass(frozen=True)
class Connection:
    kube: KubeClient
    namespace: str  # the context's namespace, "default" if it names none
    server: str


def connect(kubeconfig: str | None = None, *, context: str | None = None) -> Connection:
    path = kubeconfig or os.environ.get("KUBECONFIG") or None
    default = Path(config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION).expanduser()
    if path is None and not default.exists() and _IN_CLUSTER_NAMESPACE.exists():
        return _in_cluster()
    configuration = client.Configuration()
    try:
        contexts, current = config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
        chosen = current
        if context is not None:
            chosen = next((c for c in contexts if c["name"] == context), None)
            if chosen is None:
                names = ", ".join(c["name"] for c in contexts) or "none"
                raise KubeconfigError(f"context {context!r} not found (contexts: {names})")
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, context=context, client_configuration=configuration
        )
    except config.ConfigException as exc:
        raise KubeconfigError(f"kubeconfig {path or default}: {exc}") from exc
    except OSError as exc:
        raise KubeconfigError(f"kubeconfig {path or default}: {exc.strerror or exc}") from exc
    # One attempt: an unreachable server is reported at once, not after urllib3's retries.
    configuration.retries = 1
    namespace = str(((chosen or {}).get("context") or {}).get("namespace") or "default")
    return Connection(
        kube=KubeClient(client.ApiClient(configuration)),
        namespace=namespace,
        server=str(configuration.host),
    )


def _in_cluster() -> Connection:
    configuration = client.Configuration()
    config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return Connection(
        kube=KubeClient(client.ApiClient(configuration)),
        namespace=_IN_CLUSTER_NAMESPACE.read_text().strip(),
        server=str(configuration.host),
    )
