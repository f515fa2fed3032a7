"""The Deployment watch's loop (handlers/deployment_watch.py) when the server answers 410
Gone: it lists again and the listing replaces the namespace whole. The session's API server
keeps enough history that it does not answer 410 on demand (it does after a restart: the fault
tier; tests/integration/test_deployment_watch.py runs the rest against it), so a stand-in
serves the two calls the loop makes, as the server answers them: pages with a continue token,
and a watch that ends in an ERROR 410 event."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, cast

from localkube.processes import wait_until
from mitigator.handlers.deployment_watch import DeploymentWatch
from mitigator.handlers.deployments import DeploymentCache
from mitigator.k8s import Expired, KubeClient
from mitigator.k8s.watching import Page


def _meta(name: str, version: str, **labels: str) -> Any:
    return {
        "metadata": {
            "name": name,
            "namespace": "shop",
            "resourceVersion": version,
            "labels": labels,
        }
    }


class _Stream:
    def __init__(self, events: list[Any], *, then_gone: bool) -> None:
        self._events, self._gone = events, then_gone
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[Any]:
        yield from self._events
        if self._gone:
            raise Expired("Deployments in shop: too old resource version")
        self._closed.wait(10)  # an open watch, quiet until closed

    def close(self) -> None:
        self._closed.set()


class _Server:
    """Two listings (the first in two pages) and two watches: the first expires."""

    def __init__(self) -> None:
        self.lists = [
            [
                Page([_meta("a", "5", app="a"), _meta("b", "6", app="b")], "10", "next"),
                Page([_meta("c", "7", app="c")], "10", ""),
            ],
            [
                Page(
                    [_meta("a", "5", app="a"), _meta("c", "30", app="x"), _meta("d", "31")],
                    "40",
                    "",
                )
            ],
        ]
        self.watched_from: list[str] = []
        self.continued: list[str] = []

    def deployment_metadata_page(
        self, namespace: str | None, *, limit: int, continue_token: str = ""
    ) -> Page:
        self.continued.append(continue_token)
        listing = self.lists[0]
        page = listing.pop(0)
        if not listing:
            self.lists.pop(0)
        return page

    def watch_deployment_metadata(
        self, namespace: str | None, *, resource_version: str, timeout_seconds: int
    ) -> _Stream:
        self.watched_from.append(resource_version)
        if len(self.watched_from) == 1:
            relabelled = {"type": "MODIFIED", "object": _meta("b", "11", app="web")}
            bookmark = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "12"}}}
            return _Stream([relabelled, bookmark], then_gone=True)
        return _Stream([], then_gone=False)


def test_a_watch_answered_410_lists_again_and_replaces_the_namespace() -> None:
    server = _Server()
    cache = DeploymentCache(["shop"])
    moved: list[tuple[str, str]] = []
    listed: list[tuple[set[str], bool]] = []
    watch = DeploymentWatch(
        cast(KubeClient, server),
        cache,
        moved=lambda ns, name: moved.append((ns, name)),
        listed=lambda namespaces, first: listed.append((namespaces, first)),
        page_size=2,
    )
    watch.start()
    try:
        wait_until(lambda: len(server.watched_from) == 2, timeout=10, what="the second watch")
    finally:
        watch.stop()
    assert server.continued == ["", "next", ""]  # the first listing followed its token
    assert server.watched_from == ["10", "40"]  # the second from the new listing's version
    assert moved == [("shop", "b")]
    assert listed == [({"shop"}, True), ({"shop"}, False)]
    assert watch.listings == 2
    assert {d.name: d.labels for d in cache.in_namespace("shop")} == {
        "a": {"app": "a"},
        "c": {"app": "x"},
        "d": {},
    }
    # Its own threads: an operator elsewhere in the session has watch threads of its own.
    assert not watch.running
