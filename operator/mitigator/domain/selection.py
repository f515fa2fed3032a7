"""Which policy covers a target: label selectors, evaluated as the API server does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from mitigator.domain.ceilings import Ceilings, ceiling_refusal, within_ceilings
from mitigator.models import LabelSelector, PolicySpec, SelectorOperator, describe_validation_error


def selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """matchLabels AND every matchExpression, like metav1.LabelSelector."""
    if any(labels.get(key) != value for key, value in selector.match_labels.items()):
        return False
    for requirement in selector.match_expressions:
        present = requirement.key in labels
        value = labels.get(requirement.key)
        if requirement.operator is SelectorOperator.IN and value not in requirement.values:
            return False
        if (
            requirement.operator is SelectorOperator.NOT_IN
            and present
            and value in requirement.values
        ):
            return False
        if requirement.operator is SelectorOperator.EXISTS and not present:
            return False
        if requirement.operator is SelectorOperator.DOES_NOT_EXIST and present:
            return False
    # An empty selector would cover everything: the schema refuses it, and so does this.
    return bool(selector.match_labels or selector.match_expressions)


@dataclass(frozen=True)
class PolicyCandidate:
    """A policy as read from the cluster: its spec, or why it could not be used."""

    name: str
    spec: PolicySpec | None
    invalid_reason: str | None = None
    # A valid spec that exceeds the operator's ceilings (reason NotAllowed, not InvalidSpec).
    not_allowed: bool = False

    @property
    def invalid_kind(self) -> str:
        """The reason of its Invalid condition, as its status says it."""
        return "NotAllowed" if self.not_allowed else "InvalidSpec"


def policy_candidate(
    name: str,
    spec: Mapping[str, Any] | None,
    *,
    namespace: str | None = None,
    ceilings: Ceilings | None = None,
) -> PolicyCandidate:
    """A policy as read from the API: validated once; an invalid one says why. Beyond its
    schema, a policy must stay within the operator's `ceilings` (allowed URLs, replicas,
    namespaces): one that does not is invalid too, and nothing it names is ever requested."""
    try:
        parsed = PolicySpec.model_validate(dict(spec or {}))
    except ValidationError as exc:
        return PolicyCandidate(name, None, describe_validation_error(exc))
    if ceilings is None:
        return PolicyCandidate(name, parsed)
    parsed = within_ceilings(parsed, ceilings)
    if refusal := ceiling_refusal(parsed, namespace=namespace, ceilings=ceilings):
        return PolicyCandidate(name, None, refusal, not_allowed=True)
    return PolicyCandidate(name, parsed)


@dataclass(frozen=True)
class PolicyChoice:
    policy: PolicyCandidate | None
    reason: str


def choose_policy(
    candidates: Sequence[PolicyCandidate],
    *,
    target_labels: Mapping[str, str],
    policy_ref: str | None,
    followed: str | None = None,
) -> PolicyChoice:
    """The named policy if ``policyRef`` is set (it must still cover the target: a reference
    never widens a policy's reach); otherwise the one valid policy whose selector matches, the
    first by name when several do (and the reason says so). `followed` is the policy the
    Incident recorded earlier: when nothing covers the target any more, the reason says what
    became of that one (gone, narrowed, or Invalid and why), which is what a person reads."""
    if policy_ref is not None:
        named = next((c for c in candidates if c.name == policy_ref), None)
        if named is None:
            return PolicyChoice(None, f"policyRef {policy_ref!r} not found in this namespace")
        if named.spec is None:
            return PolicyChoice(None, f"policy {policy_ref} is invalid: {named.invalid_reason}")
        if not selector_matches(named.spec.selector, target_labels):
            return PolicyChoice(
                None, f"policy {policy_ref}'s selector does not cover the target's labels"
            )
        return PolicyChoice(named, f"policy {policy_ref} named by policyRef")
    matching = sorted(
        (c for c in candidates if c.spec and selector_matches(c.spec.selector, target_labels)),
        key=lambda c: c.name,
    )
    if not matching:
        invalid = [c.name for c in candidates if c.spec is None and c.name != followed]
        note = f" (invalid policies ignored: {', '.join(sorted(invalid))})" if invalid else ""
        lapsed = _lapsed(candidates, followed)
        if lapsed is None:
            return PolicyChoice(None, f"no valid MitigationPolicy covers the target{note}")
        return PolicyChoice(
            None, f"{lapsed}; no other valid MitigationPolicy covers the target{note}"
        )
    if len(matching) > 1:
        others = ", ".join(c.name for c in matching[1:])
        return PolicyChoice(
            matching[0], f"policy {matching[0].name} (first by name; also matching: {others})"
        )
    return PolicyChoice(matching[0], f"policy {matching[0].name} covers the target")


def _lapsed(candidates: Sequence[PolicyCandidate], followed: str | None) -> str | None:
    """What became of the policy an Incident followed and that no longer covers its target."""
    if followed is None:
        return None
    was = f"policy {followed}, which this Incident followed,"
    named = next((c for c in candidates if c.name == followed), None)
    if named is None:
        return f"{was} no longer exists"
    if named.spec is None:
        return f"{was} is Invalid ({named.invalid_kind}): {named.invalid_reason}"
    return f"{was} no longer covers the target's labels"
