"""The API server's answers as this package's exceptions: the transport's `HttpError` never
leaves mitigator.k8s."""

from __future__ import annotations

import json

from mitigator.k8s.transport import HttpError
from mitigator.models import JsonObject

# What the API server answers (422) when a JSON-patch "test" operation does not hold.
_FAILED_TEST = "the server rejected our request due to an error in our request"


class NotFound(LookupError):
    """The object does not exist."""


class Conflict(RuntimeError):
    """The object changed under us (resourceVersion test failed): read again and retry."""


class AlreadyExists(Conflict):
    """An object of that name exists already (a create answered 409)."""


class NamespaceNotFound(NotFound):
    """The namespace to create the object in does not exist."""


class Invalid(ValueError):
    """The API server refused the object as invalid (422); the message says why."""


class Expired(LookupError):
    """A LIST's continue token or a WATCH's resourceVersion is older than the API server keeps
    (410 Gone): list again from now."""


class ApiError(RuntimeError):
    """Any other answer of the API server; `transient` when a retry may succeed."""

    def __init__(self, message: str, *, status: int | None, server_message: str = "") -> None:
        super().__init__(message)
        self.status = status
        # The message of the metav1.Status the API server answered with ("" if none).
        self.server_message = server_message

    @property
    def transient(self) -> bool:
        return self.status is None or self.status >= 500 or self.status == 429


def _status_of(exc: HttpError) -> JsonObject:
    """The metav1.Status the API server answered with, or {}."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def translate_write(exc: HttpError, what: str) -> Exception:
    """Like `_translate`, for creates and merge patches: 409 AlreadyExists vs a resourceVersion
    conflict, a missing namespace vs a missing object, and 422 as `Invalid`."""
    status = _status_of(exc)
    details = status.get("details") or {}
    if exc.status == 409:
        if status.get("reason") == "AlreadyExists":
            return AlreadyExists(f"{what} already exists")
        return Conflict(f"{what}: conflict: {status.get('message') or exc.reason}")
    if exc.status == 404 and details.get("kind") == "namespaces":
        return NamespaceNotFound(str(status.get("message") or f"namespace of {what} not found"))
    if exc.status == 404 and details.get("name"):
        return NotFound(f"{what} not found")
    if exc.status == 422:
        return Invalid(str(status.get("message") or exc.reason))
    return _api_error(exc, what)


def translate_tested_write(exc: HttpError, what: str) -> Exception:
    """`translate_write` for a JSON patch whose `test` operations guard it: a failed test (a
    422 too) is a `Conflict`, not `Invalid`."""
    return _failed_test(exc, what) or translate_write(exc, what)


def translate(exc: HttpError, what: str) -> Exception:
    if exc.status == 404:
        return NotFound(f"{what} not found")
    failed_test = _failed_test(exc, what)
    if failed_test is not None:
        return failed_test
    if exc.status == 409:
        return Conflict(f"{what}: conflict: {exc.reason}")
    return _api_error(exc, what)


def _failed_test(exc: HttpError, what: str) -> Conflict | None:
    """A JSON-patch `test` failed (a 422): someone changed the object since it was read."""
    if exc.status == 422 and _FAILED_TEST in str(exc.body):
        return Conflict(f"{what} changed while it was being patched; will re-read")
    return None


def _api_error(exc: HttpError, what: str) -> ApiError:
    return ApiError(
        f"{what}: API error {exc.status}: {exc.reason}",
        status=exc.status,
        server_message=str(_status_of(exc).get("message") or ""),
    )
