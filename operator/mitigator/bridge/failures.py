"""How the Kubernetes API failed, for the bridge's answers: `ApiFailure` (a retry may fix it:
503, Alertmanager retries) or `TooLarge` (the API server will not store an object that large:
413 ("Request entity too large", over its 3 MiB), or a 5xx saying "etcdserver: request is too
large" (over etcd's 1.5 MiB) or "ResourceExhausted ... larger than max" (over its gRPC
client's 2 MiB); permanent, so Alertmanager must not retry)."""

from __future__ import annotations

from mitigator import k8s
from mitigator.bridge.notes import clip

# How the API server says an object is too large to store.
_TOO_LARGE = ("request entity too large", "request is too large", "larger than max")


class ApiFailure(RuntimeError):
    """The Kubernetes API failed in a way a retry may fix: answered 503."""


class TooLarge(RuntimeError):
    """The API server refuses to store an Incident this large."""


def server_message(exc: BaseException) -> str:
    """The message of the metav1.Status the API server answered with, if any."""
    return exc.server_message if isinstance(exc, k8s.ApiError) else ""


def is_too_large(exc: BaseException) -> bool:
    if not isinstance(exc, k8s.ApiError) or exc.status is None:
        return False
    text = f"{exc} {exc.server_message}".lower()
    return exc.status == 413 or (exc.status >= 500 and any(m in text for m in _TOO_LARGE))


def describe_failure(exc: Exception) -> str:
    """One line for the 503 and the log: the API server's answer, or why none came."""
    if not isinstance(exc, k8s.ApiError):  # no answer at all: refused, timed out, TLS
        return f"{type(exc).__name__}: {clip(' '.join(str(exc).split()), 300)}"
    answer = str(exc) if exc.status is None else f"HTTP {exc.status}: {exc}"
    if exc.transient:
        return answer
    # Forbidden, Unauthorized, ...: not the alerts' fault, so still a 503 that Alertmanager
    # retries, but only a change to the bridge's credentials or RBAC will make it pass.
    return f"{answer} (not transient: check the bridge's credentials and RBAC)"
