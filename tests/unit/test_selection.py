"""Which policy covers a target (metav1.LabelSelector semantics)."""

from __future__ import annotations

from typing import Any

import pytest

from mitigator.domain.selection import PolicyCandidate, choose_policy, selector_matches
from mitigator.models import LabelSelector
from tests.unit.factories import policy


def _selector(**wire: Any) -> LabelSelector:
    return LabelSelector.model_validate(wire)


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        (_selector(matchLabels={"app": "web"}), {"app": "web", "tier": "1"}, True),
        (_selector(matchLabels={"app": "web"}), {"app": "api"}, False),
        (_selector(matchLabels={"app": "web"}), {}, False),
        (
            _selector(matchExpressions=[{"key": "tier", "operator": "In", "values": ["1", "2"]}]),
            {"tier": "2"},
            True,
        ),
        (
            _selector(matchExpressions=[{"key": "tier", "operator": "In", "values": ["1"]}]),
            {},
            False,
        ),
        (
            _selector(matchExpressions=[{"key": "tier", "operator": "NotIn", "values": ["3"]}]),
            {},
            True,
        ),
        (
            _selector(matchExpressions=[{"key": "tier", "operator": "NotIn", "values": ["3"]}]),
            {"tier": "3"},
            False,
        ),
        (
            _selector(matchExpressions=[{"key": "canary", "operator": "Exists"}]),
            {"canary": ""},
            True,
        ),
        (_selector(matchExpressions=[{"key": "canary", "operator": "Exists"}]), {}, False),
        (
            _selector(matchExpressions=[{"key": "canary", "operator": "DoesNotExist"}]),
            {"canary": "x"},
            False,
        ),
        (
            _selector(
                matchLabels={"app": "web"},
                matchExpressions=[{"key": "canary", "operator": "DoesNotExist"}],
            ),
            {"app": "web"},
            True,
        ),
    ],
)
def test_selector_matches(selector: LabelSelector, labels: dict[str, str], matches: bool) -> None:
    assert selector_matches(selector, labels) is matches


WEB = PolicyCandidate("web", policy(selector={"matchLabels": {"app": "web"}}))
ALSO_WEB = PolicyCandidate("also-web", policy(selector={"matchLabels": {"app": "web"}}))
API = PolicyCandidate("api", policy(selector={"matchLabels": {"app": "api"}}))
BROKEN = PolicyCandidate("broken", None, invalid_reason="spec.rules: Field required")
LABELS = {"app": "web"}


def test_the_one_matching_policy() -> None:
    choice = choose_policy([WEB, API], target_labels=LABELS, policy_ref=None)
    assert choice.policy is WEB
    assert choice.reason == "policy web covers the target"


def test_several_matching_first_by_name_and_said_so() -> None:
    choice = choose_policy([WEB, ALSO_WEB, API], target_labels=LABELS, policy_ref=None)
    assert choice.policy is ALSO_WEB
    assert "also matching: web" in choice.reason


def test_none_matching_mentions_the_invalid_ones() -> None:
    choice = choose_policy([API, BROKEN], target_labels=LABELS, policy_ref=None)
    assert choice.policy is None
    assert (
        choice.reason
        == "no valid MitigationPolicy covers the target (invalid policies ignored: broken)"
    )


@pytest.mark.parametrize(
    ("ref", "chosen", "reason"),
    [
        ("web", WEB, "policy web named by policyRef"),
        ("missing", None, "policyRef 'missing' not found in this namespace"),
        ("broken", None, "policy broken is invalid: spec.rules: Field required"),
        ("api", None, "policy api's selector does not cover the target's labels"),
    ],
)
def test_policy_ref(ref: str, chosen: PolicyCandidate | None, reason: str) -> None:
    choice = choose_policy([WEB, API, BROKEN], target_labels=LABELS, policy_ref=ref)
    assert choice.policy is chosen
    assert choice.reason == reason


NOT_ALLOWED = PolicyCandidate(
    "web",
    None,
    invalid_reason="metrics.prometheusURL http://127.0.0.2:9090 is not allowed by the operator",
    not_allowed=True,
)


@pytest.mark.parametrize(
    ("candidates", "reason"),
    [
        (
            [NOT_ALLOWED, BROKEN],
            "policy web, which this Incident followed, is Invalid (NotAllowed): "
            "metrics.prometheusURL http://127.0.0.2:9090 is not allowed by the operator; "
            "no other valid MitigationPolicy covers the target "
            "(invalid policies ignored: broken)",
        ),
        (
            [PolicyCandidate("web", None, invalid_reason="spec.rules: Field required"), API],
            "policy web, which this Incident followed, is Invalid (InvalidSpec): "
            "spec.rules: Field required; no other valid MitigationPolicy covers the target",
        ),
        (
            [API],
            "policy web, which this Incident followed, no longer exists; "
            "no other valid MitigationPolicy covers the target",
        ),
        (
            [PolicyCandidate("web", policy(selector={"matchLabels": {"app": "other"}}))],
            "policy web, which this Incident followed, no longer covers the target's labels; "
            "no other valid MitigationPolicy covers the target",
        ),
    ],
)
def test_what_became_of_the_policy_an_incident_followed_is_the_reason(
    candidates: list[PolicyCandidate], reason: str
) -> None:
    choice = choose_policy(candidates, target_labels=LABELS, policy_ref=None, followed="web")
    assert choice.policy is None
    assert choice.reason == reason


def test_another_valid_policy_still_covers_the_target_when_the_followed_one_lapses() -> None:
    choice = choose_policy(
        [NOT_ALLOWED, ALSO_WEB], target_labels=LABELS, policy_ref=None, followed="web"
    )
    assert choice.policy is ALSO_WEB
