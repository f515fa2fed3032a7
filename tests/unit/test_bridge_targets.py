"""Where the bridge refuses to create Incidents (the control plane's namespaces always, the
setting's on top), and alerts that name only a pod: followed to the Deployment its owner chain
leads to, or unmapped with the reason."""

from __future__ import annotations

import pytest

from mitigator.bridge.grouping import map_payload, pods_named
from mitigator.bridge.notes import UNMAPPED, Reason
from mitigator.bridge.targets import MappingRules, PodRef, Unowned, controller_of
from mitigator.domain.guardrails import ALWAYS_PROTECTED_NAMESPACES
from tests.unit.alerts import RULES, payload, wire_alert


@pytest.mark.parametrize("namespace", sorted(ALWAYS_PROTECTED_NAMESPACES))
def test_the_control_plane_namespaces_are_always_refused(namespace: str) -> None:
    # Even when the allowed namespaces would let them through.
    for rules in (RULES, MappingRules(allowed_namespaces=("*",))):
        mapping = map_payload(payload(wire_alert("1", namespace=namespace)), rules)
        assert mapping.targets == ()
        [note] = mapping.rejected
        assert note.reason is Reason.PROTECTED_NAMESPACE
        assert (note.namespace, note.target) == (namespace, "web")
        assert "always protected" in note.message


def test_the_setting_protects_more_namespaces() -> None:
    rules = MappingRules(protected_namespaces=("payments", "team-*"))
    mapping = map_payload(
        payload(
            wire_alert("1", namespace="payments"),
            wire_alert("2", namespace="team-a"),
            wire_alert("3", namespace="prod"),
        ),
        rules,
    )
    assert [t.namespace for t in mapping.targets] == ["prod"]
    assert sorted((n.fingerprint, n.reason) for n in mapping.rejected) == [
        ("1", Reason.PROTECTED_NAMESPACE),
        ("2", Reason.PROTECTED_NAMESPACE),
    ]
    assert "MITIGATOR_BRIDGE_PROTECTED_NAMESPACES" in mapping.rejected[0].message


def test_a_protected_pod_is_not_followed() -> None:
    item = wire_alert("1", namespace="kube-system", deployment=None, pod="coredns-abc-123")
    assert pods_named(payload(item), RULES) == []
    [note] = map_payload(payload(item), RULES).rejected
    assert note.reason is Reason.PROTECTED_NAMESPACE


# ----------------------------------------------------------------- pods


def test_an_alert_naming_only_a_pod_names_a_pod_to_follow() -> None:
    sample = payload(
        wire_alert("1", deployment=None, pod="web-7d9f-abcde"),
        wire_alert("2", deployment=None, pod="web-7d9f-abcde"),
        wire_alert("3", deployment="api", pod="ignored-0"),  # a target label wins
        wire_alert("4", deployment=None, pod="db-0"),
    )
    assert pods_named(sample, RULES) == [PodRef("prod", "web-7d9f-abcde"), PodRef("prod", "db-0")]
    assert pods_named(sample, MappingRules(pod_label="")) == []


def test_followed_pods_become_targets_or_unmapped_with_the_reason() -> None:
    sample = payload(
        wire_alert("1", deployment=None, pod="web-7d9f-abcde"),
        wire_alert("2", deployment="web"),
        wire_alert("3", deployment=None, pod="db-0"),
        wire_alert("4", deployment=None, pod="gone-1"),
    )
    owners = {
        ("prod", "web-7d9f-abcde"): "web",
        ("prod", "db-0"): Unowned(
            Reason.POD_NOT_IN_DEPLOYMENT, "pod db-0 is owned by StatefulSet db"
        ),
        ("prod", "gone-1"): Unowned(Reason.UNKNOWN_POD, "pod gone-1 not found in namespace prod"),
    }
    mapping = map_payload(sample, RULES, owners=owners)
    [target] = mapping.targets
    assert (target.deployment, sorted(r.fingerprint for r in target.records)) == ("web", ["1", "2"])
    assert target.records[0].labels.get("pod") == "web-7d9f-abcde"  # the alert's own labels
    assert [(n.fingerprint, n.reason) for n in mapping.unmapped] == [
        ("3", Reason.POD_NOT_IN_DEPLOYMENT),
        ("4", Reason.UNKNOWN_POD),
    ]
    assert all(n.reason in UNMAPPED for n in mapping.unmapped)
    assert mapping.rejected == ()


def test_a_pod_that_is_not_a_name_is_refused() -> None:
    mapping = map_payload(payload(wire_alert("1", deployment=None, pod="Web_1")), RULES)
    [note] = mapping.rejected
    assert note.reason is Reason.INVALID_TARGET
    assert "not a pod name" in note.message


def test_no_target_label_and_no_pod_says_both() -> None:
    [note] = map_payload(payload(wire_alert("1", deployment=None)), RULES).unmapped
    assert note.reason is Reason.NO_TARGET_LABEL
    assert "nor a pod (label pod)" in note.message


def test_controller_of() -> None:
    def owned(*refs: dict[str, object]) -> dict[str, object]:
        return {"metadata": {"ownerReferences": list(refs)}}

    rs = {"kind": "ReplicaSet", "name": "web-7d9f", "controller": True}
    assert controller_of(owned(rs)) == ("ReplicaSet", "web-7d9f")
    assert controller_of(owned({**rs, "controller": False})) is None
    assert controller_of(owned({"kind": "Node", "name": "n"}, rs)) == ("ReplicaSet", "web-7d9f")
    assert controller_of({"metadata": {}}) is None
    assert controller_of({}) is None
