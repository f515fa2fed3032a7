"""LIST in pages and WATCH from where the list stood, metadata only: what a cache of names
and labels needs (handlers/deployment_watch.py), as client-go's metadata informers ask for it.

The API server answers with `PartialObjectMetadata` (apiVersion, kind, metadata): no spec, no
status, so a watch of Deployments does not carry each rollout's and each status update's
whole object here only to be thrown away."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import urllib3

from mitigator.k8s.errors import ApiError, Expired, translate
from mitigator.k8s.transport import HttpError, Transport
from mitigator.models import JsonObject

METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
# Silence longer than this beyond the watch's own timeout: the connection is dead.
SILENCE_MARGIN = 30.0


@dataclass(frozen=True)
class Page:
    items: list[JsonObject]
    resource_version: str
    continue_token: str  # "" on the last page


def list_page(
    transport: Transport, path: str, *, what: str, limit: int, continue_token: str = ""
) -> Page:
    """One page of a collection's metadata; `Expired` when the continue token is too old."""
    query: dict[str, str | int | None] = {"limit": limit, "continue": continue_token or None}
    try:
        raw = transport.request_bytes("GET", path, query=query, accept=METADATA_LIST)
    except HttpError as exc:
        if exc.status == 410:
            raise Expired(f"{what}: list continuation expired") from exc
        raise translate(exc, what) from exc
    answer: JsonObject = json.loads(raw)
    metadata = answer.get("metadata") or {}
    return Page(
        items=list(answer.get("items") or []),
        resource_version=str(metadata.get("resourceVersion") or ""),
        continue_token=str(metadata.get("continue") or ""),
    )


class WatchStream:
    """One open WATCH: its events as they come ({"type", "object"}; BOOKMARK included), until
    the server ends it (its timeout) or `close` is called, from any thread."""

    def __init__(self, response: urllib3.BaseHTTPResponse, *, what: str) -> None:
        self._response = response
        self._what = what
        self._closed = False

    def __iter__(self) -> Iterator[JsonObject]:
        try:
            for line in self._lines():
                if not line.strip():
                    continue
                event: JsonObject = json.loads(line)
                if event.get("type") == "ERROR":
                    raise _watch_error(event.get("object") or {}, self._what)
                yield event
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if self._closed:
                return
            raise ApiError(f"{self._what}: watch broken: {exc}", status=None) from exc

    def _lines(self) -> Iterator[bytes]:
        pending = b""
        for chunk in self._response.stream(64 * 1024):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            yield from lines
        if pending:
            yield pending

    def close(self) -> None:
        """End the watch now (a reader blocked in it returns). Never raises: a watch the
        server ended has handed its connection back already, and there is nothing to end."""
        self._closed = True
        shutdown: Any = getattr(self._response, "shutdown", None)
        # urllib3 >= 2.3: unblocks a read in another thread; it refuses (RuntimeError) a
        # response whose connection went back to the pool.
        with contextlib.suppress(Exception):
            if shutdown is not None:
                shutdown()
        with contextlib.suppress(Exception):
            self._response.close()


def _watch_error(status: JsonObject, what: str) -> Exception:
    if status.get("code") == 410:
        return Expired(f"{what}: {status.get('message') or 'resourceVersion too old'}")
    return ApiError(
        f"{what}: watch error {status.get('code')}: {status.get('reason')}",
        status=int(status["code"]) if isinstance(status.get("code"), int) else None,
        server_message=str(status.get("message") or ""),
    )


def watch(
    transport: Transport, path: str, *, what: str, resource_version: str, timeout_seconds: int
) -> WatchStream:
    """A WATCH of a collection's metadata from `resource_version`, with bookmarks (so a quiet
    collection's version stays fresh), ended by the server after `timeout_seconds`."""
    query: dict[str, str | int | None] = {
        "watch": "true",
        "resourceVersion": resource_version,
        "allowWatchBookmarks": "true",
        "timeoutSeconds": timeout_seconds,
    }
    try:
        response = transport.open_stream(
            path, query=query, accept=METADATA, read_timeout=timeout_seconds + SILENCE_MARGIN
        )
    except HttpError as exc:
        if exc.status == 410:
            raise Expired(f"{what}: resourceVersion {resource_version} too old") from exc
        raise translate(exc, what) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ApiError(f"{what}: watch not opened: {exc}", status=None) from exc
    return WatchStream(response, what=what)
