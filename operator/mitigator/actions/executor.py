"""Apply and revert actions against the API, exactly once per (incident, action id).

Reads the target, builds the change with the pure builders (one per action model, chosen by
`functools.singledispatchmethod`), and writes it in one JSON patch that (1) tests what it
read, (2) makes the change and (3) appends the action's record to the target's annotation. A
second call for the same key finds the record and reports the earlier application instead of
acting again.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import singledispatchmethod

from mitigator.actions import builders, marker
from mitigator.actions.change import ActionRefused, Change, replicas_op
from mitigator.actions.reverts import build_revert
from mitigator.k8s import ApiError, Conflict, KubeClient, NotFound
from mitigator.models import (
    ActionState,
    AnyAction,
    JsonObject,
    MaintenanceAction,
    Phase,
    RestartAction,
    RollbackAction,
    ScaleAction,
    SetEnvAction,
    format_timestamp,
)
from mitigator.models.execution import (
    ActionOutcome,
    ActionRequest,
    ReleaseRequest,
    RevertRequest,
)


class ActionExecutor:
    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube

    def apply(self, request: ActionRequest) -> ActionOutcome:
        return _answered(lambda: self._apply(request))

    def revert(self, request: RevertRequest) -> ActionOutcome:
        return _answered(lambda: self._revert(request))

    def release(self, request: ReleaseRequest) -> ActionOutcome:
        """Give the target's claim up; a claim already gone (or another's) is left alone."""
        return _answered(lambda: self._release(request))

    def _apply(self, request: ActionRequest) -> ActionOutcome:
        deployment = self.kube.read_deployment(request.namespace, request.target)
        applied = marker.find_record(deployment, request.key)
        if applied is not None:
            return ActionOutcome(
                ActionState.APPLIED,
                f"already applied at {applied.get('at')} (found the record on {request.target})",
                before=applied.get("before", {}),
                after=applied.get("after", {}),
                recovered=True,
            )
        claim = marker.claim_of(deployment)
        if claim is not None and claim.uid != request.incident_uid and self._live(request, claim):
            return ActionOutcome(
                ActionState.REFUSED,
                f"Incident {claim.incident} is mitigating Deployment {request.target} "
                f"(claimed at {claim.at}); this one is attached to it",
                claimed_by=claim.incident,
            )
        refusal = request.admit(marker.applied_records(deployment))
        if refusal is not None:
            return ActionOutcome(ActionState.REFUSED, refusal)
        change, service = self._change(request.action, deployment, request)
        self._write(request.namespace, deployment, service, change, request=request)
        return ActionOutcome(
            ActionState.APPLIED, change.message, before=change.before, after=change.after
        )

    # One builder per action model; each returns the change and the Service it switches.

    @singledispatchmethod
    def _change(
        self, action: AnyAction, deployment: JsonObject, request: ActionRequest
    ) -> tuple[Change, JsonObject | None]:
        raise ActionRefused(f"no builder for {type(action).__name__}")

    @_change.register
    def _(
        self, action: RollbackAction, deployment: JsonObject, request: ActionRequest
    ) -> tuple[Change, JsonObject | None]:
        replica_sets = self.kube.replica_sets_of(deployment)
        return builders.build_rollback(deployment, replica_sets, action), None

    @_change.register
    def _(
        self, action: ScaleAction, deployment: JsonObject, request: ActionRequest
    ) -> tuple[Change, JsonObject | None]:
        return builders.build_scale(deployment, action, max_replicas=request.max_replicas), None

    @_change.register
    def _(
        self, action: RestartAction, deployment: JsonObject, request: ActionRequest
    ) -> tuple[Change, JsonObject | None]:
        return builders.build_restart(deployment, now=request.now), None

    @_change.register
    def _(
        self, action: SetEnvAction, deployment: JsonObject, request: ActionRequest
    ) -> tuple[Change, JsonObject | None]:
        return builders.build_set_env(deployment, action), None

    @_change.register
    def _(
        self, action: MaintenanceAction, deployment: JsonObject, request: ActionRequest
    ) -> tuple[Change, JsonObject | None]:
        service = self.kube.read_service(request.namespace, action.service)
        earlier = marker.find_record(service, request.key)
        if earlier is None:
            return builders.build_maintenance(deployment, service, action), service
        # The Service was switched by an earlier run that stopped before the Deployment's
        # write: finish with the Deployment.
        change = Change(
            deployment_ops=[replicas_op(0)],
            before=earlier["before"],
            after=earlier["after"],
            message=earlier.get("message", "maintenance mode"),
        )
        return change, None

    def _live(self, request: ActionRequest, claim: marker.Claim) -> bool:
        """The claimant still mitigates: it exists, is the same object, and is not done. A
        claim left by an Incident that is gone or finished does not hold the target."""
        try:
            incident = self.kube.read_incident(request.namespace, claim.incident)
        except NotFound:
            return False
        if incident["metadata"].get("uid") != claim.uid:
            return False
        return Phase.of((incident.get("status") or {}).get("phase")).advances_by_itself

    def _release(self, request: ReleaseRequest) -> ActionOutcome:
        deployment = self.kube.read_deployment(request.namespace, request.target)
        ops = marker.release_ops(deployment, uid=request.incident_uid)
        if not ops:
            return ActionOutcome(ActionState.SKIPPED, "no claim of this incident to release")
        self.kube.patch_deployment(request.namespace, request.target, ops)
        return ActionOutcome(ActionState.APPLIED, f"released the claim on {request.target}")

    def _revert(self, request: RevertRequest) -> ActionOutcome:
        deployment = self.kube.read_deployment(request.namespace, request.target)
        done = marker.find_record(deployment, request.key)
        if done is not None:
            return ActionOutcome(
                ActionState.APPLIED, f"already reverted at {done.get('at')}", recovered=True
            )
        # A recorded maintenance names the Service it switched.
        service_name = request.before.get("service")
        service = (
            self.kube.read_service(request.namespace, str(service_name)) if service_name else None
        )
        change = build_revert(
            request.action_type, deployment, before=request.before, service=service
        )
        self._write(request.namespace, deployment, service, change, request=request)
        return ActionOutcome(
            ActionState.APPLIED, change.message, before=change.before, after=change.after
        )

    def _write(
        self,
        namespace: str,
        deployment: JsonObject,
        service: JsonObject | None,
        change: Change,
        *,
        request: ActionRequest | RevertRequest,
    ) -> None:
        record = {
            "key": request.key,
            "type": request.action_type.value,
            "at": format_timestamp(request.now),
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
        claim = (
            marker.claim_ops(
                deployment,
                uid=request.incident_uid,
                incident=request.incident_name,
                now_stamp=format_timestamp(request.now),
            )
            if isinstance(request, ActionRequest)
            else []
        )
        self.kube.patch_deployment(
            namespace,
            deployment["metadata"]["name"],
            [
                *marker.precondition_ops(deployment),
                *change.deployment_ops,
                *marker.record_ops(deployment, record),
                *claim,
            ],
        )


def _answered(act: Callable[[], ActionOutcome]) -> ActionOutcome:
    """Run an apply or a revert; what can go wrong becomes an outcome, never an exception."""
    try:
        return act()
    except NotFound as exc:
        return ActionOutcome(ActionState.FAILED, str(exc))
    except ActionRefused as exc:
        return ActionOutcome(ActionState.SKIPPED, str(exc))
    except Conflict as exc:
        return ActionOutcome(ActionState.FAILED, str(exc), retryable=True)
    except ApiError as exc:
        return ActionOutcome(ActionState.FAILED, str(exc), retryable=exc.transient)
