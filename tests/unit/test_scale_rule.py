"""The scale rule, in the one place production calls it: `ScaleAction.target_replicas`,
through the builder that writes it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mitigator.actions.builders import build_scale
from mitigator.actions.change import ActionRefused
from mitigator.actions.reverts import REVERT_BUILDERS
from mitigator.models import REVERTIBLE_ACTION_TYPES, ActionType, ScaleAction


def _deployment(replicas: int) -> dict[str, object]:
    return {"metadata": {"name": "web"}, "spec": {"replicas": replicas}}


@pytest.mark.parametrize(
    ("current", "scale", "max_replicas", "replicas", "capped"),
    [
        (3, ScaleAction(increment=2), 20, 5, False),
        (3, ScaleAction(increment=2, max_replicas=4), 20, 4, True),
        (3, ScaleAction(increment=2, max_replicas=40), 4, 4, True),
        (3, ScaleAction(replicas=10), 8, 8, True),
        (6, ScaleAction(replicas=3), 20, 3, False),  # an absolute count may scale down
        (12, ScaleAction(increment=2), 10, 12, True),  # an increment never does
    ],
)
def test_target_replicas(
    current: int, scale: ScaleAction, max_replicas: int, replicas: int, capped: bool
) -> None:
    target = scale.target_replicas(current, max_replicas=max_replicas)
    assert (target.replicas, target.capped) == (replicas, capped)


@given(
    st.integers(min_value=0, max_value=100),
    st.integers(min_value=1, max_value=50),
    st.one_of(st.none(), st.integers(min_value=1, max_value=50)),
    st.integers(min_value=1, max_value=50),
)
def test_an_increment_never_exceeds_the_caps_nor_scales_down(
    current: int, increment: int, step_max: int | None, policy_max: int
) -> None:
    scale = ScaleAction(increment=increment, max_replicas=step_max)
    target = scale.target_replicas(current, max_replicas=policy_max)
    assert target.replicas >= current
    limit = min(policy_max, step_max or policy_max)
    assert target.replicas <= max(limit, current)
    assert target.capped == (target.replicas < current + increment)
    # The builder writes exactly that, or refuses when it would change nothing.
    try:
        change = build_scale(_deployment(current), scale, max_replicas=policy_max)
    except ActionRefused as refusal:
        assert target.replicas == current
        assert f"already has {current} replicas" in str(refusal)
    else:
        assert change.deployment_ops == [
            {"op": "replace", "path": "/spec/replicas", "value": target.replicas}
        ]


def test_an_increment_above_the_cap_is_refused_with_the_reason() -> None:
    with pytest.raises(ActionRefused) as refused:
        build_scale(_deployment(12), ScaleAction(increment=2), max_replicas=10)
    assert str(refused.value) == (
        "Deployment web already has 12 replicas (requested 14, capped at maxReplicas 10)"
    )


def test_every_revertible_type_has_exactly_one_revert() -> None:
    # isolate is not a policy's choice (revertOnResolve): it is lifted on every resolve.
    assert frozenset(REVERT_BUILDERS) == REVERTIBLE_ACTION_TYPES | {ActionType.ISOLATE}
