"""The operator's own cache of the watched namespaces' Deployments: name, labels and
resourceVersion each, kept current by deployment_watch.py's LIST and WATCH.

What reads it: policy coverage and policy choice (the labels), and a tick, which spares
reading a target the watch shows unchanged (metrics/cluster.py, the resourceVersion). kopf
watched Deployments for this before, and kept per object what its handlers need (a worker, a
memo, the last body, index entries: about 9 KiB each); 5,000 Deployments nobody concerns then
cost the operator 46 MiB (docs/BENCHMARKS.md, item 24). An entry here is a few hundred bytes.

Pure and thread-safe: the watch's threads write, ticks (handler threads) and the coverage
code (the event loop) read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from mitigator.models import JsonObject

Scope = str | None  # a namespace, or None: every namespace the operator watches


@dataclass(frozen=True, slots=True)
class WatchedDeployment:
    """What policy coverage and policy choice need of a Deployment, its name and labels; and
    the version the watch last saw, which spares a tick reading an unchanged target again."""

    name: str
    labels: dict[str, str]
    resource_version: str = ""


Entry = tuple[str, WatchedDeployment]  # (namespace, deployment)


def entry_of(obj: JsonObject) -> Entry | None:
    """An object's compact entry (None: not a named, namespaced object)."""
    metadata = obj.get("metadata") or {}
    namespace, name = metadata.get("namespace"), metadata.get("name")
    if not namespace or not name:
        return None
    labels = {str(k): str(v) for k, v in (metadata.get("labels") or {}).items()}
    version = str(metadata.get("resourceVersion") or "")
    return str(namespace), WatchedDeployment(str(name), labels, version)


class DeploymentCache:
    """Deployments by namespace and name. Complete (`synced`) once every scope has been listed
    once; from then on a re-listing replaces a scope's part whole, so a reader never sees one
    half-listed."""

    def __init__(
        self, scopes: Sequence[Scope], *, admits: Callable[[str], bool] | None = None
    ) -> None:
        self.scopes: tuple[Scope, ...] = tuple(scopes)
        self._admits = admits or (lambda _namespace: True)
        self._by_namespace: dict[str, dict[str, WatchedDeployment]] = {}
        self._unlisted: set[Scope] = set(self.scopes)
        self._synced = threading.Event()
        self._lock = threading.Lock()
        if not self._unlisted:
            self._synced.set()

    # ------------------------------------------------------------ readers

    @property
    def synced(self) -> bool:
        """Every scope listed once: the cache holds every Deployment, not a part."""
        return self._synced.is_set()

    def get(self, namespace: str, name: str) -> WatchedDeployment | None:
        with self._lock:
            return self._by_namespace.get(namespace, {}).get(name)

    def in_namespace(self, namespace: str) -> list[WatchedDeployment]:
        with self._lock:
            return list(self._by_namespace.get(namespace, {}).values())

    def __len__(self) -> int:
        with self._lock:
            return sum(len(names) for names in self._by_namespace.values())

    # ------------------------------------------------------------ writers (the watch)

    def replace(self, scope: Scope, entries: Iterable[Entry]) -> set[str]:
        """A listing of `scope`, whole: what it does not name is gone. The namespaces where a
        Deployment came, went or changed its labels."""
        fresh: dict[str, dict[str, WatchedDeployment]] = {}
        for namespace, deployment in entries:
            if self._in(scope, namespace):
                fresh.setdefault(namespace, {})[deployment.name] = deployment
        with self._lock:
            old = {
                namespace: names
                for namespace, names in self._by_namespace.items()
                if self._in(scope, namespace)
            }
            for namespace in old:
                del self._by_namespace[namespace]
            self._by_namespace.update(fresh)
            self._unlisted.discard(scope)
            if not self._unlisted:
                self._synced.set()
        return {
            namespace
            for namespace in old.keys() | fresh.keys()
            if _labels_by_name(old.get(namespace, {})) != _labels_by_name(fresh.get(namespace, {}))
        }

    def apply(self, event: JsonObject) -> tuple[str, str] | None:
        """One watch event (ADDED, MODIFIED, DELETED; a BOOKMARK changes nothing). The
        (namespace, name) of a Deployment that came, went or changed its labels; None when
        nothing coverage reads moved (a rollout, a status update)."""
        kind = event.get("type")
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return None
        found = entry_of(event.get("object") or {})
        if found is None or not self._admits(found[0]):
            return None
        namespace, deployment = found
        with self._lock:
            names = self._by_namespace.setdefault(namespace, {})
            before = names.get(deployment.name)
            if kind == "DELETED":
                names.pop(deployment.name, None)
                if not names:
                    del self._by_namespace[namespace]
                moved = before is not None
            else:
                names[deployment.name] = deployment
                moved = before is None or before.labels != deployment.labels
        return (namespace, deployment.name) if moved else None

    def _in(self, scope: Scope, namespace: str) -> bool:
        return (namespace == scope if scope is not None else True) and self._admits(namespace)


def _labels_by_name(names: dict[str, WatchedDeployment]) -> dict[str, dict[str, str]]:
    return {name: deployment.labels for name, deployment in names.items()}
