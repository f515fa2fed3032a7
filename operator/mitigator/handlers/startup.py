"""Operator start-up: kopf settings chosen on purpose, and the shared runtime in `memo`."""

from __future__ import annotations

import logging
import socket
import threading
import warnings
from typing import Any

import aiohttp
import kopf

from mitigator import API_GROUP
from mitigator.handlers import allocator
from mitigator.handlers.first_ticks_first import FirstTicksFirst, untriaged_incident_tick
from mitigator.handlers.idle_bodies import release_idle_bodies
from mitigator.handlers.leadership import AlwaysActing, LeaderElector, Leadership
from mitigator.handlers.lean_watch import lean_watch
from mitigator.handlers.readiness import make_readiness_wait_linear
from mitigator.handlers.start_listing import exempt_settled_listings
from mitigator.handlers.tls_reads import smaller_tls_reads
from mitigator.handlers.watch_selection import fall_back_without_selector, select_incidents
from mitigator.handlers.world import Cluster
from mitigator.k8s import KubeClient
from mitigator.observability import metrics
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
    # A new Incident's first ticks are taken before the others' (first_ticks_first.py).
    settings.execution.executor = FirstTicksFirst(
        config.max_workers,
        urgent=untriaged_incident_tick,
        waited=metrics.observe_handler_wait,
        thread_name_prefix="handler",
    )
    settings.execution.max_workers = config.max_workers
    settings.posting.level = logging.INFO
    # Events say who wrote them: `kubectl describe` shows "mitigator", not kopf's default.
    settings.posting.reporting_component = "mitigator"
    settings.posting.reporting_instance = socket.gethostname()
    settings.posting.event_name_prefix = "mitigator-"
    settings.watching.server_timeout = 300
    # kopf's first listing of a kind in pages, not one response: thousands of Incidents are
    # megabytes of JSON, read and parsed at once, whose peak the process keeps afterwards.
    settings.watching.chunk_size = 500
    # Settled, Failed and Suppressed Incidents are not listed nor watched (watch_selection.py).
    select_incidents(settings)


def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In-cluster service account when there is one, else the kubeconfig named by KUBECONFIG
    (read now, not when the kubernetes library was first imported)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


def api_connections(config: OperatorSettings, namespaces: list[str]) -> int | None:
    """How many connections kopf may open to the API server (None: no limit). Each watched
    namespace holds one watch per kind (Incidents, policies) open for good, and one is spare
    (the Deployments' watch has a client of its own: deployment_feed.py); the rest is for the
    handlers' writes and kopf's own. A glob matches namespaces not known yet:
    then no limit, unless one is set."""
    if config.api_connections is not None:
        return config.api_connections
    if any(set(name) & set("*?[!") for name in namespaces):
        return None
    return config.max_workers + 16 + 3 * max(len(namespaces), 1)


def bounded_session(info: kopf.ConnectionInfo, *, connections: int) -> kopf.AiohttpSession:
    """kopf's own session to the API server, with at most `connections` open at once. kopf's
    default has no limit: 300 Incidents at once left 488 TLS connections open (each a
    handshake for the API server, and 128 KiB of buffers here: 61 MiB); over the limit a
    request waits for a connection to come free instead."""
    with warnings.catch_warnings():  # kopf's deprecation of basic auth, not ours to show
        warnings.simplefilter("ignore", DeprecationWarning)
        auth = info.as_aiohttp_basic_auth()
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        auth=auth,
        proxy=info.proxy_url,
        trust_env=bool(info.trust_env),
    )
    return kopf.AiohttpSession(
        server=info.server,
        priority=info.priority,
        default_namespace=info.default_namespace,
        expiration=info.expiration,
        aiohttp_session=session,
    )


def bounded_login(connections: int) -> Any:
    async def login_bounded(**kwargs: Any) -> kopf.AiohttpSession | None:
        info = login(**kwargs)
        return None if info is None else bounded_session(info, connections=connections)

    return login_bounded


def register(registry: kopf.OperatorRegistry, config: OperatorSettings) -> None:
    # Before kopf starts: its start-up wait for the indexes is quadratic in the objects.
    make_readiness_wait_linear()
    # And objects whose handlers read no index (settled Incidents) do not wait.
    exempt_settled_listings()
    # Before kopf sees an object: it would keep every Incident's body for good, and the
    # managedFields of every object it watches.
    release_idle_bodies()
    lean_watch()
    # A CRD older than this operator refuses the Incident watch's selector: watch without it.
    fall_back_without_selector()
    # Before kopf connects: 256 KiB of resident read buffer per TLS connection otherwise.
    smaller_tls_reads()
    # Before the handler threads exist: their per-thread malloc arenas held a burst's peak.
    allocator.limit_arenas()

    def configure(
        settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any
    ) -> None:
        configure_kopf(settings, config)
        memo.settings = config
        # Leader election: every replica watches; only the Lease holder acts (the handlers
        # and every write to a target ask `memo.leadership`). kopf runs standalone.
        leadership: Leadership = AlwaysActing()
        if config.leader_election:
            elector = LeaderElector.from_settings(config, watched=[])
            elector.start()
            memo.elector = leadership = elector
        memo.leadership = leadership
        # One pooled connection per handler thread: with the client's default pool (5 per
        # CPU) the threads beyond it open a new TLS connection for every request.
        memo.cluster = Cluster(
            KubeClient.from_environment_pooled(pool_size=config.max_workers),
            default_prometheus_url=config.prometheus_url,
            leadership=leadership,
            prometheus_connection=config.prometheus_connection(),
        )
        memo.trimming = threading.Event()
        allocator.trim_periodically(memo.trimming)
        if config.metrics_port is not None:
            memo.metrics_server = metrics.serve(config.metrics_port, host=config.metrics_host)
        # Without leader election this replica is the one that acts; the election, when on,
        # reports each change itself.
        metrics.set_leader(not config.leader_election)
        logger.info(
            "mitigator configured: prometheus=%s protected=%s tick=%ss metrics_port=%s",
            config.prometheus_url,
            sorted(config.protected_namespaces),
            config.tick_seconds,
            config.metrics_port,
        )

    def cleanup(memo: kopf.Memo, **_: Any) -> None:
        # Stop acting first, then hand the Lease over: the standby need not wait for expiry.
        elector: LeaderElector | None = memo.get("elector")
        if elector is not None:
            elector.stop()
        trimming: threading.Event | None = memo.get("trimming")
        if trimming is not None:
            trimming.set()
        server = memo.get("metrics_server")
        if server is not None:
            server.shutdown()
            server.server_close()

    kopf.on.startup(registry=registry)(configure)
    kopf.on.cleanup(registry=registry)(cleanup)
    if config.api_connections is None:
        kopf.on.login(registry=registry)(login)
    else:
        kopf.on.login(registry=registry, id="login")(bounded_login(config.api_connections))


def watch_only(registry: kopf.OperatorRegistry, namespaces: list[str]) -> None:
    """Exact namespace names (no globs): kopf needs not list namespaces nor watch CRDs, so the
    namespaced install holds no cluster-wide permission at all. (Without this, kopf retries a
    forbidden namespace listing for about a minute before it falls back to the names given.)"""
    if not namespaces or any(set(name) & set("*?[!") for name in namespaces):
        return

    def no_scanning(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.scanning.disabled = True

    kopf.on.startup(registry=registry)(no_scanning)
