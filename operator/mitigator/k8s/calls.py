"""How every call to the API server is made: the wire JSON as it comes, its errors
translated into mitigator.k8s's own exceptions (the transport's never leave the package)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mitigator.k8s.errors import translate
from mitigator.k8s.transport import HttpError, Transport
from mitigator.models import JsonObject


def selector_string(match_labels: Mapping[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(match_labels.items()))


def selector_of(deployment: JsonObject) -> str:
    return selector_string(deployment["spec"]["selector"].get("matchLabels") or {})


Translate = Callable[[HttpError, str], Exception]
CustomResource = tuple[str, str, str]  # group, version, plural


def call(
    transport: Transport,
    what: str,
    method: str,
    path: str,
    *,
    translate: Translate = translate,
    **how: Any,
) -> JsonObject:
    """One API call, its answer decoded from the wire JSON and its errors translated into
    this module's exceptions (the transport's own never leave it)."""
    try:
        return transport.request(method, path, **how)
    except HttpError as exc:
        raise translate(exc, what) from exc


def items(transport: Transport, what: str, path: str, **query: str) -> list[JsonObject]:
    """A LIST's items (one response, as the client read it: no pages)."""
    return list(call(transport, what, "GET", path, query=query)["items"])
