"""The Deployment cache's place in the operator: made and its watch started at the operator's
start, stopped at its end; what the watch sees handed to policy coverage in kopf's event loop.

The scopes follow the namespaces the operator is run for: exact names, one LIST+WATCH each
(the namespaced install holds no cluster-wide permission); none, or a pattern, one of every
namespace, keeping those that match (as kopf matches them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import kopf
from kopf._cogs.structs.references import NamespaceName, match_namespace

from mitigator.handlers import policies
from mitigator.handlers.deployment_watch import DeploymentWatch
from mitigator.handlers.deployments import DeploymentCache, Scope
from mitigator.handlers.indexes import POLICIES
from mitigator.handlers.world import Cluster
from mitigator.k8s import KubeClient

log = logging.getLogger("mitigator.deployments")

_PATTERN = set("*?[!,")


def scopes_of(namespaces: Sequence[str]) -> tuple[list[Scope], Callable[[str], bool] | None]:
    """What to list and watch for `mitigator run --namespace ...`, and which namespaces to
    keep of a cluster-wide watch (None: all)."""
    if not namespaces:
        return [None], None
    if not any(set(name) & _PATTERN for name in namespaces):
        return list(dict.fromkeys(namespaces)), None
    patterns = list(namespaces)
    return [None], lambda namespace: any(
        match_namespace(NamespaceName(namespace), p) for p in patterns
    )


def register(registry: kopf.OperatorRegistry, *, namespaces: Sequence[str]) -> None:
    scopes, admits = scopes_of(namespaces)

    async def start_watching_deployments(memo: kopf.Memo, **kwargs: Any) -> None:
        cluster: Cluster | None = memo.get("cluster")
        if cluster is None:  # the start-up handler that makes it has not run yet
            raise kopf.TemporaryError("the operator is not configured yet", delay=1)
        index: policies.Policies = kwargs[POLICIES]  # kopf's, live: filled as policies come
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()

        def spawn(coroutine: Coroutine[Any, Any, None]) -> None:
            task = loop.create_task(coroutine)
            tasks.add(task)
            task.add_done_callback(_finished(tasks))

        def in_loop(make: Callable[[], Coroutine[Any, Any, None]]) -> None:
            # A closed loop (RuntimeError): the operator is stopping; nothing is left to tell.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lambda: spawn(make()))

        def moved(namespace: str, name: str) -> None:
            in_loop(lambda: policies.deployment_moved(memo, index, namespace, name))

        def listed(namespaces: set[str], first: bool) -> None:
            # The first complete listing: every policy, whose own event did not compute it.
            in_loop(
                lambda: policies.namespaces_listed(
                    memo, index, list(index.keys()) if first else sorted(namespaces)
                )
            )

        cache = DeploymentCache(scopes, admits=admits)
        cluster.deployments = cache
        # A client of its own: each watch holds a connection for good, which the handler
        # threads' pool would otherwise lack.
        kube = KubeClient.from_environment_pooled(pool_size=len(scopes))
        watch = DeploymentWatch(kube, cache, moved=moved, listed=listed)
        watch.start()
        memo.deployment_watch = watch

    async def stop_watching_deployments(memo: kopf.Memo, **_: Any) -> None:
        watch: DeploymentWatch | None = memo.get("deployment_watch")
        if watch is not None:
            await asyncio.to_thread(watch.stop)

    kopf.on.startup(registry=registry)(start_watching_deployments)
    kopf.on.cleanup(registry=registry)(stop_watching_deployments)


def _finished(tasks: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
    def done(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("policy coverage not written: %s", task.exception())

    return done
