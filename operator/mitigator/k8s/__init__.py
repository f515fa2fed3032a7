"""The one module that talks to the Kubernetes API server."""

from mitigator.k8s.client import GROUP, VERSION, Conflict, KubeClient, NotFound

__all__ = ["GROUP", "VERSION", "Conflict", "KubeClient", "NotFound"]
