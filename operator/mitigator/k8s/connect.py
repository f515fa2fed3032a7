"""Connecting the way kubectl does, for the command line: the kubeconfig (``--kubeconfig``,
else KUBECONFIG, else ~/.kube/config), a context (``--context``, else the current one), and
that context's namespace as the default; in a pod without a kubeconfig, the ServiceAccount.

The kubeconfig is read by the kubernetes package (every auth plugin kubectl knows), imported
only when a command connects: `mitigator run` and `mitigator bridge` load this module (through
the command line) and must not pay for that package. Requests go over mitigator's own
transport, built from what it read."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mitigator.k8s.client import DEFAULT_POOL_SIZE, KubeClient
from mitigator.k8s.transport import Endpoint, Transport

_IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class KubeconfigError(RuntimeError):
    """No usable kubeconfig or context; the message says which and why."""


@dataclass(frozen=True)
class Connection:
    kube: KubeClient
    namespace: str  # the context's namespace, "default" if it names none
    server: str


def connect(kubeconfig: str | None = None, *, context: str | None = None) -> Connection:
    from kubernetes import client, config  # noqa: PLC0415 - see the module's docstring

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
        kube=client_of(configuration),
        namespace=namespace,
        server=str(configuration.host),
    )


def _in_cluster() -> Connection:
    from kubernetes import client, config  # noqa: PLC0415 - see the module's docstring

    configuration = client.Configuration()
    config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return Connection(
        kube=client_of(configuration),
        namespace=_IN_CLUSTER_NAMESPACE.read_text().strip(),
        server=str(configuration.host),
    )


def client_of(configuration: Any, *, headers: Mapping[str, str] | None = None) -> KubeClient:
    """A KubeClient over mitigator's transport to where a kubernetes `Configuration` points,
    with its credentials, retries and pool size (and more `headers` on every request)."""
    return KubeClient(
        Transport(
            lambda: endpoint_of_configuration(configuration, headers=headers),
            pool_size=configuration.connection_pool_maxsize or DEFAULT_POOL_SIZE,
            retries=configuration.retries,
        )
    )


def endpoint_of_configuration(
    configuration: Any, *, headers: Mapping[str, str] | None = None
) -> Endpoint:
    """Read at each login: the Authorization header comes through the configuration's
    refresh hook (an exec plugin's or the ServiceAccount's token, fetched again)."""
    authorization = configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
    ca_data = configuration.ca_cert_data
    return Endpoint(
        server=str(configuration.host),
        ca_path=configuration.ssl_ca_cert,
        ca_data=ca_data.decode() if isinstance(ca_data, bytes) else ca_data,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
        authorization=authorization or None,
        insecure=not configuration.verify_ssl,
        headers=dict(headers or {}),
    )
