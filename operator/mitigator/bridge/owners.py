"""Following a pod that an alert names to its Deployment: Pod → ReplicaSet → Deployment, by
the controlling owner references, read through the API server (get on pods and replicasets).

An alert from kube-state-metrics or a pod-scraped metric often names only its pod. A pod that
does not exist, or that no Deployment owns (a StatefulSet's, a Job's, a bare pod), leads to no
target: the alert is answered as unmapped, with the reason. A read the bridge is not allowed
(its RBAC) is the same, with a message that says so; an API server failure that a retry may
fix is `ApiFailure` (503).

Positive answers are remembered (a pod's name is never reused by a Deployment's pods: it
carries the ReplicaSet's hash), so resends cost no reads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from mitigator import k8s
from mitigator.bridge.failures import ApiFailure, describe_failure
from mitigator.bridge.notes import Reason
from mitigator.bridge.targets import PodOwner, PodRef, Unowned, controller_of

_REMEMBERED = 10_000
_RBAC = "the bridge needs get on pods and apps/replicasets"


class PodOwners:
    """pod → Deployment through the owner chain, with a memory of the answers found."""

    def __init__(self, kube: k8s.KubeClient) -> None:
        self.kube = kube
        self._known: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def deployment_of(self, pod: PodRef) -> PodOwner:
        """The Deployment that owns `pod`, or why there is none (`ApiFailure` if the API
        server failed)."""
        with self._lock:
            known = self._known.get(pod.key)
        if known is not None:
            return known
        try:
            found = self._follow(pod)
        except k8s.ApiError as exc:
            if exc.transient:
                raise ApiFailure(describe_failure(exc)) from exc
            return Unowned(
                Reason.POD_LOOKUP_FAILED,
                f"cannot follow pod {pod.pod} to its Deployment: {exc} ({_RBAC})",
            )
        except Exception as exc:  # no answer at all: refused, timed out, TLS
            raise ApiFailure(describe_failure(exc)) from exc
        if isinstance(found, str):
            with self._lock:
                self._known[pod.key] = found
                while len(self._known) > _REMEMBERED:
                    self._known.popitem(last=False)
        return found

    def _follow(self, pod: PodRef) -> PodOwner:
        namespace = pod.namespace
        try:
            obj = self.kube.read_pod(namespace, pod.pod)
        except k8s.NotFound:
            return Unowned(Reason.UNKNOWN_POD, f"pod {pod.pod} not found in namespace {namespace}")
        owner = controller_of(obj)
        if owner is None or owner[0] != "ReplicaSet":
            held = f"owned by {owner[0]} {owner[1]}" if owner else "not owned by a controller"
            return Unowned(
                Reason.POD_NOT_IN_DEPLOYMENT,
                f"pod {pod.pod} is {held}, not by a Deployment's ReplicaSet",
            )
        replica_set = owner[1]
        try:
            obj = self.kube.read_replica_set(namespace, replica_set)
        except k8s.NotFound:
            return Unowned(
                Reason.POD_NOT_IN_DEPLOYMENT,
                f"ReplicaSet {replica_set} of pod {pod.pod} not found in namespace {namespace}",
            )
        owner = controller_of(obj)
        if owner is None or owner[0] != "Deployment":
            held = f"owned by {owner[0]} {owner[1]}" if owner else "not owned by a Deployment"
            return Unowned(
                Reason.POD_NOT_IN_DEPLOYMENT,
                f"pod {pod.pod} belongs to ReplicaSet {replica_set}, which is {held}",
            )
        return owner[1]
