"""The one module that talks to the Kubernetes API server."""

from mitigator.k8s.client import KubeClient
from mitigator.k8s.errors import (
    AlreadyExists,
    ApiError,
    Conflict,
    Invalid,
    NamespaceNotFound,
    NotFound,
)

__all__ = [
    "AlreadyExists",
    "ApiError",
    "Conflict",
    "Invalid",
    "KubeClient",
    "NamespaceNotFound",
    "NotFound",
]
