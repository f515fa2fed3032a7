"""Apply and revert actions against the API, exactly once per (incident, action id).

Takes the target as the tick read it (or reads it), builds the change with the pure builders
(one per action model, chosen by `functools.singledispatchmethod`), and writes it in one JSON
patch that (1) tests what it read, (2) makes the change and (3) appends the action's record to
the target's annotation; a failed test means the read was no longer current, and the action
is decided again on a fresh read. A second call for the same key finds the record and reports
the earlier application instead of acting again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import partial, singledispatchmethod

from mitigator import failpoints
from mitigator.actions import builders, marker
from mitigator.actions.change import (
    ActionRefused,
    Change,
    ObjectChange,
    OtherKind,
    replicas_op,
    selector_op,
)
from mitigator.actions.evidence import (
    Capture,
    always_destroys_pods,
    destroys_pods,
    evidence_name,
)
from mitigator.actions.outcomes import answered
from mitigator.actions.reverts import build_revert, others_named
from mitigator.k8s import AlreadyExists, ApiError, Conflict, Invalid, KubeClient, NotFound
from mitigator.models import (
    ActionState,
    ActionType,
    AnyAction,
    IsolateAction,
    JsonObject,
    MaintenanceAction,
    Phase,
    RestartAction,
    RollbackAction,
    ScaleAction,
    SetEnvAction,
    format_timestamp,
)
from mitigator.models.evidence import TargetRead
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
        return answered(lambda: self._apply(request))

    def revert(self, request: RevertRequest) -> ActionOutcome:
        return answered(lambda: self._revert(request))

    def release(self, request: ReleaseRequest) -> ActionOutcome:
        """Give the target's claim up; a claim already gone (or another's) is left alone."""
        return answered(lambda: self._release(request))

    def _apply(self, request: ActionRequest) -> ActionOutcome:
        return self._on_read(request, partial(self._apply_on, request))

    def _on_read(
        self,
        request: ActionRequest | RevertRequest | ReleaseRequest,
        act: Callable[[TargetRead], ActionOutcome],
    ) -> ActionOutcome:
        """`act` on the tick's read of the target when it has one and nothing was written
        through it yet, else on a fresh read. Every write tests what it read: if the tick's
        read is no longer current, decide again on a fresh one, as the next tick would,
        without waiting for it."""
        given = request.read
        if given is not None and given.current:
            try:
                return act(given)
            except Conflict:
                pass
        return act(
            self.kube.target_read(self.kube.read_deployment(request.namespace, request.target))
        )

    def _apply_on(self, request: ActionRequest, read: TargetRead) -> ActionOutcome:
        deployment = read.deployment
        applied = marker.find_record(deployment, request.key)
        if applied is not None:
            return ActionOutcome(
                ActionState.APPLIED,
                f"already applied at {applied.get('at')} (found the record on {request.target})",
                before=applied.get("before", {}),
                after=applied.get("after", {}),
                recovered=True,
                evidence=self._kept(request),
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
        # The evidence's reads start before the change is built (a rollback's ReplicaSets
        # are listed meanwhile); it is still saved before the write that destroys it.
        # (A first tick may have started them before it classified: TargetRead.prefetch_*.)
        pending, note = None, ""
        if always_destroys_pods(request.action_type):
            pending = Capture(self.kube, request, read)
        try:
            change = self._change(request.action, read, request)
        except BaseException:
            if pending is not None:
                pending.drop()
            raise
        if pending is None and destroys_pods(request.action_type, change):
            pending = Capture(self.kube, request, read)
        evidence = None
        if pending is not None:
            try:
                evidence = pending.keep()
            except (ApiError, Invalid, NotFound) as exc:
                note = _not_kept(exc)
        failpoints.pause_if_armed(failpoints.PAUSE_BEFORE_ACTION_WRITE)  # tests: a rival writer
        self._write(request.namespace, read, change, request=request)
        return ActionOutcome(
            ActionState.APPLIED,
            change.message + note,
            before=change.before,
            after=change.after,
            evidence=evidence,
        )

    # One builder per action model, each given what it must read besides the Deployment.

    @singledispatchmethod
    def _change(self, action: AnyAction, read: TargetRead, request: ActionRequest) -> Change:
        raise ActionRefused(f"no builder for {type(action).__name__}")

    @_change.register
    def _(self, action: RollbackAction, read: TargetRead, request: ActionRequest) -> Change:
        # The ReplicaSets as the tick listed them (classification of a recent rollout) or
        # listed now: one label-selected LIST, never one per revision.
        return builders.build_rollback(read.deployment, read.replica_sets, action)

    @_change.register
    def _(self, action: ScaleAction, read: TargetRead, request: ActionRequest) -> Change:
        deployment = read.deployment
        autoscalers = self.kube.autoscalers_of(deployment)
        if not autoscalers:
            return builders.build_scale(deployment, action, max_replicas=request.max_replicas)
        if len(autoscalers) > 1:
            names = ", ".join(sorted(a["metadata"]["name"] for a in autoscalers))
            raise ActionRefused(f"several HorizontalPodAutoscalers target it ({names})")
        [autoscaler] = autoscalers
        earlier = marker.find_record(autoscaler, request.key)
        if earlier is not None:
            # An earlier run changed the autoscaler and stopped before the Deployment's record.
            return _finish(earlier, deployment_ops=[])
        return builders.build_autoscaled_scale(
            deployment, autoscaler, action, max_replicas=request.max_replicas
        )

    @_change.register
    def _(self, action: RestartAction, read: TargetRead, request: ActionRequest) -> Change:
        return builders.build_restart(read.deployment, now=request.now)

    @_change.register
    def _(self, action: SetEnvAction, read: TargetRead, request: ActionRequest) -> Change:
        return builders.build_set_env(read.deployment, action)

    @_change.register
    def _(self, action: IsolateAction, read: TargetRead, request: ActionRequest) -> Change:
        deployment = read.deployment
        name = builders.isolation_name(request.incident_name, request.action_id)
        # Created before the Deployment's record (an earlier run that stopped in between
        # created it already: fine); the record then says it is this step's.
        with contextlib.suppress(AlreadyExists):
            self.kube.create_network_policy(
                request.namespace,
                builders.isolation_policy(
                    deployment,
                    name=name,
                    incident=request.incident_name,
                    incident_uid=request.incident_uid,
                ),
            )
        return builders.build_isolate(deployment, name=name)

    @_change.register
    def _(self, action: MaintenanceAction, read: TargetRead, request: ActionRequest) -> Change:
        deployment = read.deployment
        autoscalers = self.kube.autoscalers_of(deployment)
        if autoscalers:
            names = ", ".join(sorted(a["metadata"]["name"] for a in autoscalers))
            raise ActionRefused(
                f"HorizontalPodAutoscaler(s) {names} own the replicas and would scale the "
                "target back up; maintenance needs them removed first"
            )
        services = self.kube.list_services(request.namespace)
        earlier = next(
            (r for svc in services if (r := marker.find_record(svc, request.key)) is not None),
            None,
        )
        if earlier is None:
            chosen = builders.services_to_switch(deployment, services, action)
            return builders.build_maintenance(deployment, chosen, action)
        # An earlier run switched some Services and stopped: finish the others and the
        # Deployment, with the state recorded before the first switch.
        recorded = set(earlier["before"]["services"])
        pending = [
            ObjectChange("Service", svc, [selector_op(dict(action.backend_selector))])
            for svc in services
            if svc["metadata"]["name"] in recorded and marker.find_record(svc, request.key) is None
        ]
        return _finish(earlier, deployment_ops=[replicas_op(0)], others=tuple(pending))

    def _kept(self, request: ActionRequest) -> str | None:
        """The evidence an earlier run captured for this step, if it did."""
        name = evidence_name(request.incident_name, request.action_id)
        try:
            self.kube.read_config_map(request.namespace, name)
        except (ApiError, NotFound):
            return None
        return name

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
        return self._on_read(request, partial(self._release_from, request))

    def _release_from(self, request: ReleaseRequest, read: TargetRead) -> ActionOutcome:
        # The patch tests the claim as read: one taken over meanwhile is not removed.
        ops = marker.release_ops(read.deployment, uid=request.incident_uid)
        if not ops:
            return ActionOutcome(ActionState.SKIPPED, "no claim of this incident to release")
        self.kube.patch_deployment(request.namespace, request.target, ops)
        read.written()
        return ActionOutcome(ActionState.APPLIED, f"released the claim on {request.target}")

    def _revert(self, request: RevertRequest) -> ActionOutcome:
        return self._on_read(request, partial(self._revert_on, request))

    def _revert_on(self, request: RevertRequest, read: TargetRead) -> ActionOutcome:
        deployment = read.deployment
        done = marker.find_record(deployment, request.key)
        if done is not None:
            return ActionOutcome(
                ActionState.APPLIED, f"already reverted at {done.get('at')}", recovered=True
            )
        others = {
            name: self._read_other(kind, request.namespace, name)
            for name, kind in others_named(request.before).items()
        }
        change = build_revert(
            request.action_type,
            deployment,
            before=request.before,
            others={name: obj for name, obj in others.items() if obj is not None},
        )
        if request.action_type is ActionType.ISOLATE:
            # Gone first, recorded second: a run that stops in between deletes it again.
            self.kube.delete_network_policy(request.namespace, str(request.before["networkPolicy"]))
        released = request.release_claim and bool(
            marker.release_ops(deployment, uid=request.incident_uid)
        )
        self._write(request.namespace, read, change, request=request)
        return ActionOutcome(
            ActionState.APPLIED,
            change.message,
            before=change.before,
            after=change.after,
            released_claim=released,
        )

    def _read_other(self, kind: OtherKind, namespace: str, name: str) -> JsonObject | None:
        read = self.kube.read_service if kind == "Service" else self.kube.read_autoscaler
        try:
            return read(namespace, name)
        except NotFound:
            return None

    def _write(
        self,
        namespace: str,
        read: TargetRead,
        change: Change,
        *,
        request: ActionRequest | RevertRequest,
    ) -> None:
        """The objects beside the Deployment first, each in a patch that tests it as read and
        carries the record; then the Deployment with the record (and the claim): a crash in
        between leaves records that the next run finishes from."""
        deployment = read.deployment
        record = {
            "key": request.key,
            "type": request.action_type.value,
            "at": format_timestamp(request.now),
            "before": change.before,
            "after": change.after,
            "message": change.message,
        }
        for other in change.others:
            if marker.find_record(other.obj, request.key) is not None:
                continue  # switched by an earlier run
            patch = (
                self.kube.patch_service if other.kind == "Service" else self.kube.patch_autoscaler
            )
            patch(
                namespace,
                other.name,
                [
                    *marker.guard_ops(other.obj, other.guarded),
                    *other.ops,
                    *marker.record_ops(other.obj, record),
                ],
            )
        if isinstance(request, ActionRequest):
            claim = marker.claim_ops(
                deployment,
                uid=request.incident_uid,
                incident=request.incident_name,
                now_stamp=format_timestamp(request.now),
            )
        elif request.release_claim:
            # Tests the claim as read: one taken over meanwhile is not removed.
            claim = marker.release_ops(deployment, uid=request.incident_uid)
        else:
            claim = []
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
        read.written()


def _not_kept(exc: Exception) -> str:
    # Forensics must not hold a mitigation back: act, and say what was lost.
    return f" (evidence not kept: {exc})"


def _finish(
    earlier: JsonObject,
    *,
    deployment_ops: list[JsonObject],
    others: tuple[ObjectChange, ...] = (),
) -> Change:
    """The change of an action an earlier run began: as it recorded it."""
    return Change(
        deployment_ops=deployment_ops,
        before=earlier["before"],
        after=earlier["after"],
        message=str(earlier.get("message", "")),
        others=others,
    )
