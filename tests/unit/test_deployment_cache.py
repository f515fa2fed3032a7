"""The operator's Deployment cache (handlers/deployments.py): watch events applied, a listing
replacing its scope whole, bookmarks changing nothing, and complete only once every scope is
listed."""

from __future__ import annotations

from typing import Any

from mitigator.handlers.deployment_feed import scopes_of
from mitigator.handlers.deployments import DeploymentCache, WatchedDeployment, entry_of


def _meta(name: str, namespace: str = "shop", version: str = "1", **labels: str) -> Any:
    return {
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": version,
            "labels": labels,
            "managedFields": [{"manager": "kubectl"}],
        },
    }


def _event(kind: str, name: str, namespace: str = "shop", version: str = "1", **labels: str) -> Any:
    return {"type": kind, "object": _meta(name, namespace, version, **labels)}


def _entries(*objects: Any) -> list[Any]:
    return [entry for obj in objects if (entry := entry_of(obj)) is not None]


def _listed(cache: DeploymentCache, scope: str | None, *objects: Any) -> set[str]:
    return cache.replace(scope, _entries(*objects))


def test_an_entry_keeps_name_labels_and_version_only() -> None:
    assert entry_of(_meta("web", version="7", app="web")) == (
        "shop",
        WatchedDeployment("web", {"app": "web"}, "7"),
    )
    assert entry_of({"metadata": {"name": "no-namespace"}}) is None


def test_complete_only_once_every_scope_is_listed() -> None:
    cache = DeploymentCache(["shop", "bank"])
    assert not cache.synced
    _listed(cache, "shop", _meta("web"))
    assert not cache.synced  # a tick must not decide on a half-listed cache
    _listed(cache, "bank", _meta("ledger", "bank"))
    assert cache.synced
    assert [d.name for d in cache.in_namespace("shop")] == ["web"]


def test_watch_events_come_change_and_go() -> None:
    cache = DeploymentCache(["shop"])
    _listed(cache, "shop")
    assert cache.apply(_event("ADDED", "web", app="web")) == ("shop", "web")
    # A rollout or a status update moves only the version: nothing coverage reads.
    assert cache.apply(_event("MODIFIED", "web", version="2", app="web")) is None
    watched = cache.get("shop", "web")
    assert watched is not None and watched.resource_version == "2"
    assert cache.apply(_event("MODIFIED", "web", version="3", app="shop")) == ("shop", "web")
    assert cache.get("shop", "web") == WatchedDeployment("web", {"app": "shop"}, "3")
    assert cache.apply(_event("DELETED", "web", version="4", app="shop")) == ("shop", "web")
    assert cache.get("shop", "web") is None
    assert cache.apply(_event("DELETED", "web", version="5")) is None  # gone already


def test_a_bookmark_changes_nothing() -> None:
    cache = DeploymentCache(["shop"])
    _listed(cache, "shop", _meta("web", app="web"))
    bookmark = {
        "type": "BOOKMARK",
        "object": {"kind": "PartialObjectMetadata", "metadata": {"resourceVersion": "99"}},
    }
    assert cache.apply(bookmark) is None
    assert cache.in_namespace("shop") == [WatchedDeployment("web", {"app": "web"}, "1")]


def test_a_listing_replaces_its_scope_whole_and_says_where_something_moved() -> None:
    cache = DeploymentCache(["shop", "bank"])
    _listed(cache, "shop", _meta("web", app="web"), _meta("db", app="db"), _meta("old"))
    _listed(cache, "bank", _meta("ledger", "bank"))
    # A re-listing after the watch expired: "old" went, "db" changed its labels, "new" came
    # while no watch ran; "web" only rolled out.
    moved = _listed(
        cache,
        "shop",
        _meta("web", version="9", app="web"),
        _meta("db", version="9", app="database"),
        _meta("new", version="9"),
    )
    assert moved == {"shop"}
    assert sorted(
        (d.name, d.labels["app"] if d.labels else "") for d in cache.in_namespace("shop")
    ) == [
        ("db", "database"),
        ("new", ""),
        ("web", "web"),
    ]
    assert [d.name for d in cache.in_namespace("bank")] == ["ledger"]  # another scope: kept
    # Versions alone moved: no namespace to recompute.
    assert _listed(cache, "bank", _meta("ledger", "bank", version="10")) == set()
    # A namespace emptied is a namespace where something moved.
    assert _listed(cache, "bank") == {"bank"}
    assert cache.in_namespace("bank") == []


def test_every_namespace_keeps_only_those_the_operator_watches() -> None:
    scopes, admits = scopes_of(["mt-*"])
    assert scopes == [None] and admits is not None
    cache = DeploymentCache(scopes, admits=admits)
    _listed(cache, None, _meta("web", "mt-1"), _meta("web", "kube-system"))
    assert cache.synced
    assert cache.get("mt-1", "web") is not None
    assert cache.get("kube-system", "web") is None
    assert cache.apply(_event("ADDED", "api", "other")) is None
    assert cache.get("other", "api") is None
    assert cache.apply(_event("ADDED", "api", "mt-2")) == ("mt-2", "api")


def test_scopes_follow_the_namespaces_given() -> None:
    assert scopes_of([]) == ([None], None)
    assert scopes_of(["shop", "bank", "shop"]) == (["shop", "bank"], None)
