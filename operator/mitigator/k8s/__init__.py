"""The one module that talks to the Kubernetes API server."""

from mitigator.k8s.client import KubeClient
from mitigator.k8s.errors import (
    AlreadyExists,
    ApiError,
    Conflict,
    Expired,
    Invalid,
    NamespaceNotFound,
    NotFound,
)

__all__ = [
    "AlreadyExists",
    "ApiError",
    "Conflict",
    "Expired",
    "Invalid",
    "KubeClient",
    "NamespaceNotFound",
    "NotFound",
]
