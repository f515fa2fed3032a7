"""Keeps the Deployment cache (deployments.py) current: per scope (a watched namespace, or
every namespace), a LIST in pages, then a WATCH from the list's resourceVersion, with
bookmarks; when the watch ends (the server's timeout) it goes on from the last version seen;
when that version is gone (410: the watch was away too long) it lists again and replaces the
scope whole; on any other error it tries again after a backoff. One thread per scope: the
reads block (mitigator.k8s is synchronous), and `stop` ends them at once.

`moved(namespace, name)` is called for each Deployment that came, went or changed its labels,
and `listed(namespaces, first)` after each listing with the namespaces whose Deployments it
changed (`first`: that listing made the cache complete); both from the watch's thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from mitigator.handlers.deployments import DeploymentCache, Entry, Scope, entry_of
from mitigator.k8s import Expired, KubeClient
from mitigator.k8s.watching import WatchStream

log = logging.getLogger("mitigator.deployments")

PAGE_SIZE = 500
WATCH_TIMEOUT_SECONDS = 300
FIRST_BACKOFF, MAX_BACKOFF = 1.0, 30.0

Moved = Callable[[str, str], None]
Listed = Callable[[set[str], bool], None]


class DeploymentWatch:
    def __init__(
        self,
        kube: KubeClient,
        cache: DeploymentCache,
        *,
        moved: Moved,
        listed: Listed,
        page_size: int = PAGE_SIZE,
        timeout_seconds: int = WATCH_TIMEOUT_SECONDS,
    ) -> None:
        self.kube = kube
        self.cache = cache
        self._moved = moved
        self._listed = listed
        self._page_size = page_size
        self._timeout_seconds = timeout_seconds
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._streams: dict[Scope, WatchStream] = {}
        self._streams_lock = threading.Lock()
        self.listings = 0  # how many LISTs completed (the first ones and each re-listing)
        self.watches = 0  # how many WATCHes opened

    def start(self, *, resume_from: str | None = None) -> None:
        """One thread per scope. `resume_from`: watch from this resourceVersion first, before
        any listing (a watch resumed after a long absence; a scope never listed is listed
        first anyway)."""
        self._stopping.clear()
        self._threads = [
            threading.Thread(
                target=self._run,
                args=(scope, resume_from),
                name=f"deployment-watch-{scope or 'all'}",
                daemon=True,
            )
            for scope in self.cache.scopes
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, *, timeout: float = 10.0) -> None:
        """End every watch now and wait for the threads."""
        self._stopping.set()
        with self._streams_lock:
            streams = list(self._streams.values())
        for stream in streams:
            stream.close()
        for thread in self._threads:
            thread.join(timeout)

    @property
    def running(self) -> bool:
        """Whether any of this watch's threads is still alive."""
        return any(thread.is_alive() for thread in self._threads)

    # ------------------------------------------------------------ one scope

    def _run(self, scope: Scope, resume_from: str | None) -> None:
        version = resume_from if resume_from and self.cache.synced else None
        backoff = FIRST_BACKOFF
        while not self._stopping.is_set():
            try:
                if version is None:
                    version = self._list(scope)
                    backoff = FIRST_BACKOFF
                version = self._watch(scope, version)
                backoff = FIRST_BACKOFF  # the server ended it: nothing was wrong
            except Expired as exc:
                log.info("Deployments of %s: %s; listing again", _named(scope), exc)
                version = None
            except Exception as exc:
                if self._stopping.is_set():
                    break
                log.warning("Deployments of %s: %s; again in %.0f s", _named(scope), exc, backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    def _list(self, scope: Scope) -> str:
        """List the scope in pages, keep each page's compact entries only, and replace the
        scope's part of the cache at once; the list's resourceVersion. A continue token that
        expired mid-way (`Expired`) starts the listing again."""
        entries: list[Entry] = []
        token = ""
        while True:
            page = self.kube.deployment_metadata_page(
                scope, limit=self._page_size, continue_token=token
            )
            entries.extend(entry for obj in page.items if (entry := entry_of(obj)) is not None)
            token = page.continue_token
            if not token:
                break
        first = not self.cache.synced
        changed = self.cache.replace(scope, entries)
        self.listings += 1
        log.info(
            "Deployments of %s listed: %d, resourceVersion %s",
            _named(scope),
            len(entries),
            page.resource_version,
        )
        self._listed(changed, first and self.cache.synced)
        return page.resource_version

    def _watch(self, scope: Scope, version: str) -> str:
        """Follow one watch until the server ends it; the last resourceVersion seen."""
        stream = self.kube.watch_deployment_metadata(
            scope, resource_version=version, timeout_seconds=self._timeout_seconds
        )
        self.watches += 1
        with self._streams_lock:
            self._streams[scope] = stream
        if self._stopping.is_set():  # stopped while it opened: `stop` did not see it
            stream.close()
        try:
            for event in stream:
                version = str(
                    ((event.get("object") or {}).get("metadata") or {}).get("resourceVersion")
                    or version
                )
                moved = self.cache.apply(event)
                if moved is not None:
                    self._moved(*moved)
        finally:
            with self._streams_lock:
                self._streams.pop(scope, None)
            stream.close()
        return version


def _named(scope: Scope) -> str:
    return "every namespace" if scope is None else f"namespace {scope}"
