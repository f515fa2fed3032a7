"""The incident lifecycle, tick by tick, against a fake World: every transition, guardrail
and record, without a server."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from mitigator.domain.selection import PolicyCandidate
from mitigator.models import ActionState, Phase, Severity
from mitigator.models.evidence import Contender, PodHealth
from mitigator.models.execution import ActionOutcome, AppliedRecord
from mitigator.models.gitops import GitOpsOwner
from tests.unit.factories import NOW, incident, policy
from tests.unit.fake_world import Driver, FakeWorld, with_policy

LADDER = [{"rollback": {}}, {"scale": {"increment": 2}}]
FAST = {"window": "10s", "timeout": "30s"}


def _world(**policy_spec: object) -> FakeWorld:
    spec = {
        "rules": [{"name": "p1", "when": {"severities": ["P0", "P1"]}, "actions": LADDER}],
        "verification": FAST,
        **policy_spec,
    }
    return with_policy(FakeWorld(error_rate=0.2), policy(**spec))


def test_a_p1_is_planned_and_its_first_step_applied_in_the_first_tick() -> None:
    world = _world()
    driver = Driver(world, incident())
    status = driver.tick()
    assert status.phase is Phase.VERIFYING
    assert status.severity is Severity.P1
    assert [a.state for a in status.actions or ()] == [ActionState.APPLIED, ActionState.PENDING]
    assert world.calls == [("0-rollback", "rollback")]
    assert driver.events()[:4] == ["Detected", "Classified", "Planned", "ActionStarted"]
    assert status.detected_at == status.mitigated_at == driver.now


def test_resolved_only_after_the_checks_hold_for_the_whole_window() -> None:
    world = _world()
    driver = Driver(world, incident())
    driver.tick()
    world.error_rate = 0.0
    assert driver.tick().phase is Phase.VERIFYING  # window starts
    assert driver.tick(after=timedelta(seconds=6)).phase is Phase.VERIFYING
    world.error_rate = 0.2  # a relapse resets the clock
    assert driver.tick(after=timedelta(seconds=3)).verification.passing_since is None  # type: ignore[union-attr]
    world.error_rate = 0.0
    driver.tick()
    assert driver.tick(after=timedelta(seconds=9)).phase is Phase.VERIFYING
    status = driver.tick(after=timedelta(seconds=2))
    assert status.phase is Phase.RESOLVED
    assert status.resolved_at == driver.now
    assert world.calls == [("0-rollback", "rollback")]


def test_verification_waits_for_the_rollout_before_the_window_starts() -> None:
    world = _world()
    driver = Driver(world, incident())
    driver.tick()
    world.error_rate = 0.0
    world.pods = PodHealth(desired=3, ready=2, rollout_in_progress=True)
    status = driver.tick(after=timedelta(seconds=20))
    assert status.verification is not None and status.verification.window_started_at is None
    world.pods = PodHealth(desired=3, ready=3)
    assert driver.tick().verification.window_started_at == driver.now  # type: ignore[union-attr]


def test_a_failed_verification_moves_down_the_ladder_then_escalates() -> None:
    world = _world()
    driver = Driver(world, incident())
    driver.tick()
    driver.tick()  # window starts
    status = driver.tick(after=timedelta(seconds=31))
    assert world.calls == [("0-rollback", "rollback"), ("1-scale", "scale")]
    assert status.current_step == 1 and status.phase is Phase.VERIFYING
    assert "VerificationFailed" in driver.events()
    driver.tick()
    status = driver.tick(after=timedelta(seconds=31))
    assert status.phase is Phase.ESCALATED
    assert "every step" in (status.message or "")


def test_a_skipped_step_moves_on_at_once_and_a_retryable_failure_does_not() -> None:
    world = _world()
    world.outcomes = [ActionOutcome(ActionState.SKIPPED, "no previous revision")]
    driver = Driver(world, incident())
    status = driver.tick()
    assert [a.state for a in status.actions or ()] == [ActionState.SKIPPED, ActionState.APPLIED]
    retry_world = _world()
    retry_world.outcomes = [ActionOutcome(ActionState.FAILED, "conflict", retryable=True)]
    retry = Driver(retry_world, incident())
    status = retry.tick()
    assert status.phase is Phase.MITIGATING and status.actions[0].state is ActionState.PENDING  # type: ignore[index]
    assert retry.tick().actions[0].state is ActionState.APPLIED  # type: ignore[index]


def test_cooldown_refuses_when_another_incident_changed_the_target_recently() -> None:
    world = _world(guardrails={"cooldown": "10m"})
    world.applied = [AppliedRecord("other-uid/0-rollback", "rollback", NOW - timedelta(minutes=3))]
    status = Driver(world, incident()).tick()
    assert status.phase is Phase.ESCALATED and "cooldown" in (status.message or "")
    assert "nothing was changed" in (status.message or "")
    assert world.calls == []
    assert status.actions is not None and status.actions[0].state is ActionState.REFUSED
    world.applied = [AppliedRecord("other-uid/0-rollback", "rollback", NOW - timedelta(minutes=11))]
    assert Driver(world, incident()).tick().phase is Phase.VERIFYING


def test_hourly_cap_and_concurrency() -> None:
    capped = _world(guardrails={"maxActionsPerHour": 2, "cooldown": "1s"})
    capped.applied = [
        AppliedRecord(f"x/{i}", "scale", NOW - timedelta(minutes=10)) for i in range(2)
    ]
    status = Driver(capped, incident()).tick()
    assert status.phase is Phase.ESCALATED and "last hour" in (status.message or "")
    assert capped.calls == []
    busy = _world(guardrails={"maxConcurrentMitigations": 1})
    busy.contenders = [Contender("other", "other", NOW, holds_claim=True, waiting=False)]
    driver = Driver(busy, incident())
    assert driver.tick().phase is Phase.MITIGATING
    assert busy.calls == []
    busy.contenders = []
    assert driver.tick().phase is Phase.VERIFYING


def test_dry_run_plans_and_touches_nothing() -> None:
    world = _world()
    status = Driver(world, incident(dryRun=True)).tick()
    assert status.phase is Phase.ESCALATED
    assert [a.state for a in status.actions or ()] == [ActionState.DRY_RUN] * 2
    assert world.calls == []


def test_approval_gate() -> None:
    world = _world(guardrails={"requireApprovalFor": ["rollback"]})
    driver = Driver(world, incident())
    assert driver.tick().phase is Phase.AWAITING_APPROVAL
    assert driver.tick(after=timedelta(minutes=5)).phase is Phase.AWAITING_APPROVAL
    assert world.calls == []
    assert driver.tick(approved=True).phase is Phase.VERIFYING
    assert world.calls == [("0-rollback", "rollback")]


def test_protected_namespaces_are_never_touched() -> None:
    for namespace, extra in (
        ("kube-system", {}),
        ("payments", {"guardrails": {"protectedNamespaces": ["payments"]}}),
    ):
        world = _world(**extra)
        status = Driver(world, incident(), namespace=namespace).tick()
        assert status.phase is Phase.ESCALATED and "protected" in (status.message or "")
        assert world.calls == []


def test_missing_evidence_is_unknown_and_not_acted_on_unless_the_policy_says_so() -> None:
    world = _world()
    world.prometheus_down = True
    status = Driver(world, incident()).tick()
    assert status.classification is not None
    assert status.classification.severity is Severity.UNKNOWN
    assert status.classification.evidence_complete is False
    assert status.phase is Phase.ESCALATED and world.calls == []
    acting = _world(guardrails={"actOnUnknown": True})
    acting.prometheus_down = True
    labelled = incident(source={"type": "alertmanager", "labels": {"severity": "critical"}})
    assert Driver(acting, labelled).tick().severity is Severity.P1
    assert acting.calls == [("0-rollback", "rollback")]


def test_no_policy_or_an_invalid_one_escalates_with_the_reason() -> None:
    world = FakeWorld(error_rate=0.2)
    status = Driver(world, incident(severity="P1")).tick()
    assert status.phase is Phase.ESCALATED and "no valid MitigationPolicy" in (status.message or "")
    world.policies_ = [PolicyCandidate("broken", None, "spec.rules: required")]
    status = Driver(world, incident(policyRef={"name": "broken"})).tick()
    assert "invalid" in (status.message or "") and world.calls == []


def test_a_policy_made_invalid_while_a_step_waits_for_approval_stops_with_its_reason() -> None:
    world = _world(guardrails={"requireApprovalFor": ["rollback"]})
    driver = Driver(world, incident())
    assert driver.tick().phase is Phase.AWAITING_APPROVAL
    # Valid for the API server, outside the operator's ceilings: Invalid, reason NotAllowed.
    reason = "guardrails.maxReplicas 500 is above the operator's ceiling of 100"
    world.policies_ = [PolicyCandidate("runbooks", None, reason, not_allowed=True)]
    status = driver.tick(approved=True)
    assert status.phase is Phase.ESCALATED
    assert status.message == (
        "stopped before step 0-rollback: policy runbooks, which this Incident followed, is "
        f"Invalid (NotAllowed): {reason}; no other valid MitigationPolicy covers the target"
    )
    assert driver.events()[-1] == "Escalated"
    assert world.calls == []
    assert [a.state for a in status.actions or ()] == [ActionState.PENDING] * 2


def test_resolution_reverts_what_the_policy_names_newest_first() -> None:
    world = _world(revertOnResolve=["scale"])
    world.outcomes = [ActionOutcome(ActionState.SKIPPED, "no previous revision")]
    driver = Driver(world, incident())
    driver.tick()
    world.error_rate = 0.0
    driver.tick()
    status = driver.tick(after=timedelta(seconds=11))
    assert status.phase is Phase.RESOLVED
    assert world.reverted == [("1-scale", {"replicas": 2})]
    assert [r.state for r in status.reverts or ()] == [ActionState.REVERTED]


def test_the_last_revert_gives_the_claim_up_in_its_own_patch() -> None:
    """Resolving reverts the temporary measures and ends the hold on the target: one patch
    of the Deployment does both, not a revert and then a release."""
    world = _world(revertOnResolve=["scale"])
    world.outcomes = [ActionOutcome(ActionState.FAILED, "no", retryable=False)]
    driver = Driver(world, incident())
    driver.tick()  # step 0 failed: step 1 (scale) applied
    world.error_rate = 0.0
    driver.tick()
    status = driver.tick(after=timedelta(seconds=11))
    assert status.phase is Phase.RESOLVED
    assert world.reverted == [("1-scale", {"replicas": 2})]
    assert world.released_with_revert == ["inc-uid"]
    assert world.released == []


def test_a_person_can_resolve_an_escalated_incident() -> None:
    world = _world(revertOnResolve=["scale"])
    driver = Driver(world, incident())
    driver.tick()
    driver.tick()
    driver.tick(after=timedelta(seconds=31))  # step 0 failed verification; step 1 applied
    driver.tick()  # step 1's window starts
    assert driver.tick(after=timedelta(seconds=31)).phase is Phase.ESCALATED
    status = driver.tick(resolve=True)
    assert status.phase is Phase.RESOLVED
    assert [r[0] for r in world.reverted] == ["1-scale"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 0.5), st.floats(0, 30), st.booleans(), st.integers(1, 40)),
        min_size=1,
        max_size=25,
    )
)
def test_each_step_is_applied_at_most_once_whatever_the_metrics_do(
    ticks: list[tuple[float, float, bool, int]],
) -> None:
    world = _world()
    driver = Driver(world, incident())
    for error_rate, p95, prometheus_down, seconds in ticks:
        world.error_rate, world.p95_seconds, world.prometheus_down = (
            error_rate,
            p95,
            prometheus_down,
        )
        driver.tick(after=timedelta(seconds=seconds))
    ids = [call[0] for call in world.calls]
    assert len(ids) == len(set(ids))
    if driver.status.phase is Phase.RESOLVED:
        assert driver.status.verification is not None and driver.status.verification.passed


def test_only_the_step_that_needs_approval_waits_for_it() -> None:
    world = _world(guardrails={"requireApprovalFor": ["scale"]})
    driver = Driver(world, incident())
    driver.tick()
    driver.tick()
    status = driver.tick(after=timedelta(seconds=31))  # the rollback did not help
    assert status.phase is Phase.AWAITING_APPROVAL and "1-scale" in (status.message or "")
    assert world.calls == [("0-rollback", "rollback")]
    assert driver.tick(approved=True).phase is Phase.VERIFYING
    assert world.calls[-1] == ("1-scale", "scale")


def test_an_incident_that_finds_the_target_claimed_is_suppressed_and_attached() -> None:
    world = _world()
    world.claimed_by = "first"
    status = Driver(world, incident()).tick()
    assert status.phase is Phase.SUPPRESSED and status.attached_to == "first"
    assert world.calls == [] and world.released == []
    assert "first" in (status.message or "")


def test_the_claim_is_released_when_the_incident_stops_mitigating() -> None:
    world = _world()
    driver = Driver(world, incident())
    assert driver.tick().phase is Phase.VERIFYING
    assert world.released == []
    world.error_rate = 0.0
    driver.tick(after=timedelta(seconds=1))
    driver.tick(after=timedelta(seconds=11))
    assert driver.status.phase is Phase.RESOLVED
    assert world.released == ["inc-uid"]


def test_escalation_names_why_no_step_was_applied() -> None:
    world = _world()
    world.outcomes = [
        ActionOutcome(ActionState.SKIPPED, "no previous revision"),
        ActionOutcome(ActionState.SKIPPED, "already has 12 replicas"),
    ]
    status = Driver(world, incident()).tick()
    assert status.phase is Phase.ESCALATED
    assert status.message == (
        "no step could be applied: 0-rollback skipped: no previous revision; "
        "1-scale skipped: already has 12 replicas"
    )
    assert world.released == []


def test_a_missing_target_is_waited_for_then_fails() -> None:
    world = _world(guardrails={"targetWait": "30s"})
    world.exists = False
    driver = Driver(world, incident())
    status = driver.tick()
    assert status.phase is Phase.TRIAGING
    assert "waiting for Deployment prod/luminamind to exist (up to 30s" in (status.message or "")
    world.exists = True
    assert driver.tick().phase is Phase.VERIFYING  # it came: planned and acted
    late = _world(guardrails={"targetWait": "30s"})
    late.exists = False
    driver = Driver(late, incident())
    driver.tick()
    status = driver.tick(after=timedelta(seconds=31))
    assert status.phase is Phase.FAILED
    assert status.message == "Deployment prod/luminamind not found (waited 30s)"


ARGO = GitOpsOwner("Argo CD", "Application", "shop", "argocd")


def _gitops_world(mode: str) -> FakeWorld:
    world = _world()
    rule = {"name": "p1", "when": {"severities": ["P0", "P1"]}, "actions": LADDER, "gitops": mode}
    world = with_policy(world, policy(rules=[rule], verification=FAST))
    world.error_rate, world.gitops = 0.2, ARGO
    return world


def test_a_target_applied_by_a_gitops_tool_is_refused_by_default() -> None:
    world = _gitops_world("refuse")
    status = Driver(world, incident()).tick()
    assert status.phase is Phase.ESCALATED and world.calls == [] and world.gitops_calls == []
    assert "Argo CD Application argocd/shop" in (status.message or "")
    assert status.gitops is not None and status.gitops.state == "Refused"


def test_suspend_then_restore_on_resolve_but_not_on_escalation() -> None:
    world = _gitops_world("suspend")
    driver = Driver(world, incident())
    status = driver.tick()
    assert world.gitops_calls == ["suspend"] and world.calls == [("0-rollback", "rollback")]
    assert status.gitops is not None and status.gitops.state == "Suspended"
    world.error_rate = 0.0
    driver.tick()
    driver.tick(after=timedelta(seconds=11))
    assert driver.status.phase is Phase.RESOLVED
    assert world.gitops_calls == ["suspend", "restore {'selfHeal': True}"]
    assert driver.status.gitops is not None and driver.status.gitops.state == "Restored"
    stuck = _gitops_world("suspend")
    stuck.outcomes = [ActionOutcome(ActionState.SKIPPED, "no previous revision")] * 2
    assert Driver(stuck, incident()).tick().phase is Phase.ESCALATED
    assert stuck.gitops_calls == ["suspend"]  # people decide; resuming would undo the fix


def test_proceed_warns_and_acts() -> None:
    world = _gitops_world("proceed")
    driver = Driver(world, incident())
    status = driver.tick()
    assert world.calls == [("0-rollback", "rollback")] and world.gitops_calls == []
    assert status.gitops is not None and status.gitops.state == "Proceeded"
    assert any(e.type == "Warning" and e.on_target for e in driver.last.events)  # type: ignore[union-attr]
    conditions = {c.type: c.status for c in status.conditions or ()}
    assert conditions["GitOpsManaged"] == "True"


def test_a_mitigation_undone_behind_the_operators_back_escalates_instead_of_looping() -> None:
    world = _world()
    world.outcomes = [
        ActionOutcome(
            ActionState.APPLIED, "rolled back", after={"images": {"app": "good"}}, before={}
        )
    ]
    world.images = {"app": "good"}
    driver = Driver(world, incident())
    assert driver.tick().phase is Phase.VERIFYING
    world.images = {"app": "bad"}  # a GitOps tool re-applied the old spec
    status = driver.tick()
    assert status.phase is Phase.ESCALATED
    assert "undone behind the operator's back" in (status.message or "")
    assert world.calls == [("0-rollback", "rollback")]


def test_a_tick_lists_the_pods_only_to_classify_and_acts_on_what_it_read() -> None:
    """API cost: the pods are listed once, for classification's crash-loop and OOM check, the
    ReplicaSets not at all (no rule asks when the target last rolled out), and the executor
    gets the tick's read rather than reading the target again. Verification then goes by the
    Deployment's counts alone."""
    world = _world()
    driver = Driver(world, incident())
    driver.tick()
    assert world.listed == ["pods"]
    assert len(world.reads_given) == 1 and world.reads_given[0] is not None
    world.error_rate = 0.0
    driver.tick()  # the window starts
    status = driver.tick(after=timedelta(seconds=11))
    assert status.phase is Phase.RESOLVED
    assert world.listed == ["pods"]


def test_the_last_rollout_is_read_only_for_a_rule_that_asks() -> None:
    rules = [
        {"name": "fresh", "when": {"recentRolloutWithin": "10m"}, "actions": [{"rollback": {}}]},
        {"name": "other", "actions": [{"restart": {}}]},
    ]
    world = _world(rules=rules)
    world.last_rollout_at = NOW - timedelta(minutes=2)
    status = Driver(world, incident()).tick()
    assert status.rule == "fresh"
    assert sorted(world.listed) == ["pods", "replicasets"]


def test_a_crash_loop_seen_only_in_the_pods_still_classifies() -> None:
    """The Deployment's counts do not show crash loops; classification reads the pods."""
    world = _world()
    world.error_rate = 0.0
    world.pods = PodHealth(desired=3, ready=0, crash_looping=3)
    status = Driver(world, incident()).tick()
    assert status.classification is not None
    assert "CrashLoopBackOff" in "; ".join(status.classification.reasons)


def test_a_duplicate_of_an_incident_mitigating_its_target_attaches_without_waiting_for_a_slot() -> (
    None
):
    world = _world(guardrails={"maxConcurrentMitigations": 1})
    target = incident().target.name
    holder = Contender("h-uid", "first", NOW, holds_claim=True, waiting=False, target=target)
    # The only slot is taken by the holder itself: queueing would wait until it finishes.
    world.contenders = [holder]
    status = Driver(world, incident()).tick()
    assert status.phase is Phase.SUPPRESSED and status.attached_to == "first"
    assert world.calls == []
    # A holder of another target leaves the concurrency limit in charge.
    world.contenders = [Contender("h-uid", "first", NOW, holds_claim=True, waiting=False)]
    assert Driver(world, incident()).tick().phase is Phase.MITIGATING
