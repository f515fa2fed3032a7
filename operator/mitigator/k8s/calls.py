"""How every call to the API server is made: decoded from the wire JSON, its errors
translated into mitigator.k8s's own exceptions (the client's never leave the package)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from mitigator.k8s.errors import translate
from mitigator.models import JsonObject


def selector_string(match_labels: Mapping[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(match_labels.items()))


def decode(response: Any) -> JsonObject:
    return dict(json.loads(response.data))


def selector_of(deployment: JsonObject) -> str:
    return selector_string(deployment["spec"]["selector"].get("matchLabels") or {})


Translate = Callable[[ApiException, str], Exception]
CustomResource = tuple[str, str, str]  # group, version, plural


def call(
    what: str,
    method: Callable[..., Any],
    *args: Any,
    translate: Translate = translate,
    **kwargs: Any,
) -> JsonObject:
    """One API call, its answer decoded from the wire JSON and its errors translated into
    this module's exceptions (the client's own never leave it)."""
    try:
        return decode(method(*args, _preload_content=False, **kwargs))
    except ApiException as exc:
        raise translate(exc, what) from exc


def items(what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> list[JsonObject]:
    return list(call(what, method, *args, **kwargs)["items"])
