"""Apply and revert actions against the API, exactly once per (incident, action id).

Reads the target, builds the change with the pure builders, and writes it in one JSON patch
that (1) tests the resourceVersion it read, (2) makes the change and (3) appends the action's
record to the target's annotation. A second call for the same key finds the record and
reports the earlier application instead of acting again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from mitigator.actions import builders, marker
from mitigator.k8s import Conflict, KubeClient, NotFound
from mitigator.models.outcomes import ActionOutcome

JsonObject = dict[str, Any]


def _stamp(now: datetime) -> str:
    return now.isoformat().replace("+00:00", "Z")


class ActionExecutor:
    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube

    def apply(
        self,
        *,
        namespace: str,
        target: str,
        action_type: str,
        params: Mapping[str, Any],
        incident_uid: str,
        action_id: str,
        max_replicas: int,
        now: datetime,
    ) -> ActionOutcome:
        key = marker.action_key(incident_uid, action_id)
        return _answered(
            lambda: self._apply(
                namespace=namespace,
                target=target,
                action_type=action_type,
                params=params,
                key=key,
                max_replicas=max_replicas,
                now=now,
            )
        )

    def _apply(
        self,
        *,
        namespace: str,
        target: str,
        action_type: str,
        params: Mapping[str, Any],
        key: str,
        max_replicas: int,
        now: datetime,
    ) -> ActionOutcome:
        deployment = self.kube.read_deployment(namespace, target)
        applied = marker.find_record(deployment, key)
        if applied is not None:
            return ActionOutcome(
                "Applied",
                f"already applied at {applied.get('at')} (found the record on {target})",
                before=applied.get("before", {}),
                after=applied.get("after", {}),
                recovered=True,
            )
        service: JsonObject | None = None
        if action_type == "rollback":
            change = builders.build_rollback(
                deployment,
                self.kube.replica_sets_of(deployment),
                to_revision=params.get("toRevision"),
            )
        elif action_type == "scale":
            cap = min(max_replicas, int(params.get("max") or max_replicas))
            change = builders.build_scale(
                deployment,
                replicas=params.get("replicas"),
                increment=params.get("increment"),
                cap=cap,
            )
        elif action_type == "restart":
            change = builders.build_restart(deployment, now=now)
        elif action_type == "setEnv":
            change = builders.build_set_env(
                deployment, container=params.get("container"), env=params["env"]
            )
        elif action_type == "maintenance":
            service = self.kube.read_service(namespace, params["service"])
            earlier = marker.find_record(service, key)
            if earlier is not None:
                # The Service was switched by an earlier run; finish with the Deployment.
                change = builders.Change(
                    deployment_ops=[{"op": "replace", "path": "/spec/replicas", "value": 0}],
                    before=earlier["before"],
                    after=earlier["after"],
                    message=earlier.get("message", "maintenance mode"),
                )
                service = None
            else:
                change = builders.build_maintenance(
                    deployment, service, backend_selector=params["backendSelector"]
                )
        else:
            raise builders.ActionRefused(f"unknown action type {action_type!r}")
        self._write(
            namespace, deployment, service, change, key=key, action_type=action_type, now=now
        )
        return ActionOutcome("Applied", change.message, before=change.before, after=change.after)

    def revert(
        self,
        *,
        namespace: str,
        target: str,
        action_type: str,
        before: Mapping[str, Any],
        incident_uid: str,
        action_id: str,
        now: datetime,
    ) -> ActionOutcome:
        key = marker.action_key(incident_uid, f"{action_id}/revert")
        return _answered(
            lambda: self._revert(
                namespace=namespace,
                target=target,
                action_type=action_type,
                before=before,
                key=key,
                now=now,
            )
        )

    def _revert(
        self,
        *,
        namespace: str,
        target: str,
        action_type: str,
        before: Mapping[str, Any],
        key: str,
        now: datetime,
    ) -> ActionOutcome:
        deployment = self.kube.read_deployment(namespace, target)
        done = marker.find_record(deployment, key)
        if done is not None:
            return ActionOutcome("Applied", f"already reverted at {done.get('at')}", recovered=True)
        service = (
            self.kube.read_service(namespace, str(before["service"]))
            if action_type == "maintenance"
            else None
        )
        change = builders.build_revert(
            action_type, deployment, before=dict(before), service=service
        )
        self._write(
            namespace, deployment, service, change, key=key, action_type=action_type, now=now
        )
        return ActionOutcome("Applied", change.message, before=change.before, after=change.after)

    def _write(
        self,
        namespace: str,
        deployment: JsonObject,
        service: JsonObject | None,
        change: builders.Change,
        *,
        key: str,
        action_type: str,
        now: datetime,
    ) -> None:
        record = {
            "key": key,
            "type": action_type,
            "at": _stamp(now),
            "before": change.before,
            "after": change.after,
            "message": change.message,
        }
        if service is not None and change.service_name:
            self.kube.patch_service(
                namespace,
                change.service_name,
                [
                    *marker.precondition_ops(service),
                    *change.service_ops,
                    *marker.record_ops(service, record),
                ],
            )
        self.kube.patch_deployment(
            namespace,
            deployment["metadata"]["name"],
            [
                *marker.precondition_ops(deployment),
                *change.deployment_ops,
                *marker.record_ops(deployment, record),
            ],
        )


def _answered(act: Callable[[], ActionOutcome]) -> ActionOutcome:
    """Run an apply or a revert; what can go wrong becomes an outcome, never an exception."""
    try:
        return act()
    except NotFound as exc:
        return ActionOutcome("Failed", str(exc))
    except builders.ActionRefused as exc:
        return ActionOutcome("Skipped", str(exc))
    except Conflict as exc:
        return ActionOutcome("Failed", str(exc), retryable=True)
    except ApiException as exc:
        return ActionOutcome(
            "Failed", f"API error {exc.status}: {exc.reason}", retryable=_transient(exc)
        )


def _transient(exc: ApiException) -> bool:
    return exc.status is None or exc.status >= 500 or exc.status == 429
