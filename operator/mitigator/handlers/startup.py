"""Operator start-up: kopf settings chosen on purpose, and the shared runtime in `memo`."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from mitigator import API_GROUP
from mitigator.handlers.world import Cluster
from mitigator.k8s import KubeClient
from mitigator.settings import OperatorSettings


def configure_kopf(settings: kopf.OperatorSettings, config: OperatorSettings) -> None:
    # Progress in annotations under our own prefix: the structural schema would prune an
    # undeclared status.kopf, and handlers would then run again.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=API_GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{API_GROUP}/finalizer"
    # Sync handlers run in this pool; its size bounds how many incidents progress at once.
    settings.execution.max_workers = config.max_workers
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300


def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In-cluster service account when there is one, else the kubeconfig named by KUBECONFIG
    (read now, not when the kubernetes library was first imported)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


def register(registry: kopf.OperatorRegistry, config: OperatorSettings) -> None:
    def configure(
        settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any
    ) -> None:
        configure_kopf(settings, config)
        memo.settings = config
        # One pooled connection per handler thread: with the client's default pool (5 per
        # CPU) the threads beyond it open a new TLS connection for every request.
        kube = KubeClient.from_environment_pooled(pool_size=config.max_workers)
        memo.cluster = Cluster(kube, default_prometheus_url=config.prometheus_url)
        logger.info(
            "mitigator configured: prometheus=%s protected=%s tick=%ss",
            config.prometheus_url,
            sorted(config.protected_namespaces),
            config.tick_seconds,
        )

    kopf.on.startup(registry=registry)(configure)
    kopf.on.login(registry=registry)(login)
