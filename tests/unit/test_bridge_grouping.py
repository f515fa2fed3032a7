"""From a webhook payload to targets, without a server: which Deployment each alert names,
what a new Incident holds, and that every alert is accounted for exactly once."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mitigator.bridge.episodes import Create, Skip, decide
from mitigator.bridge.grouping import map_payload
from mitigator.bridge.identity import LABEL_ALERTNAME, LABEL_EPISODE, LABEL_GROUP
from mitigator.bridge.notes import Reason
from mitigator.bridge.payload import WebhookPayload
from mitigator.bridge.targets import MappingRules
from mitigator.models import AlertStatus, IncidentSpec
from mitigator.models.common import DNS1123_SUBDOMAIN_PATTERN
from tests.unit.alerts import NOW, RULES, T0, only_target, payload, webhook_payloads, wire_alert

NAME = re.compile(DNS1123_SUBDOMAIN_PATTERN)


# ----------------------------------------------------------------- mapping


def test_a_target_from_the_namespace_and_the_first_target_label() -> None:
    mapping = map_payload(
        payload(
            wire_alert("1", deployment=None, app="chat"),
            wire_alert("2", deployment=None, app_kubernetes_io_name="search", app=""),
            wire_alert("3", deployment="worker", app="ignored"),
        ),
        RULES,
    )
    assert sorted((t.namespace, t.deployment) for t in mapping.targets) == [
        ("prod", "chat"),
        ("prod", "search"),
        ("prod", "worker"),
    ]
    custom = map_payload(
        payload(wire_alert("1", deployment=None, service="svc", app="chat")),
        MappingRules(target_labels=("service", "app")),
    )
    assert [t.deployment for t in custom.targets] == ["svc"]


def test_common_labels_name_the_target_too() -> None:
    mapping = map_payload(
        payload(wire_alert("1", namespace=None), commonLabels={"namespace": "prod"}), RULES
    )
    assert [(t.namespace, t.deployment) for t in mapping.targets] == [("prod", "web")]


@pytest.mark.parametrize(
    ("labels", "reason", "unmapped"),
    [
        ({"namespace": None}, Reason.NO_NAMESPACE_LABEL, True),
        ({"namespace": ""}, Reason.NO_NAMESPACE_LABEL, True),
        ({"deployment": None}, Reason.NO_TARGET_LABEL, True),
        ({"namespace": "Prod"}, Reason.INVALID_NAMESPACE, False),
        ({"namespace": "p" * 64}, Reason.INVALID_NAMESPACE, False),
        ({"namespace": "prod.eu"}, Reason.INVALID_NAMESPACE, False),
        ({"deployment": "web_app"}, Reason.INVALID_TARGET, False),
        ({"deployment": "w" * 254}, Reason.INVALID_TARGET, False),
        ({"deployment": "-web"}, Reason.INVALID_TARGET, False),
    ],
)
def test_alerts_that_name_no_usable_target(
    labels: dict[str, str | None], reason: Reason, unmapped: bool
) -> None:
    item = wire_alert("1")
    for key, value in labels.items():
        if value is None:
            item["labels"].pop(key)
        else:
            item["labels"][key] = value
    mapping = map_payload(payload(item), RULES)
    assert mapping.targets == ()
    [note] = mapping.unmapped if unmapped else mapping.rejected
    assert (note.fingerprint, note.reason) == ("1", reason)
    assert note.message


def test_namespace_patterns() -> None:
    rules = MappingRules(allowed_namespaces=("prod-*", "staging"))
    mapping = map_payload(
        payload(
            wire_alert("1", namespace="prod-eu"),
            wire_alert("2", namespace="staging"),
            wire_alert("3", namespace="dev"),
        ),
        rules,
    )
    assert sorted(t.namespace for t in mapping.targets) == ["prod-eu", "staging"]
    [note] = mapping.rejected
    assert note.reason is Reason.NAMESPACE_NOT_ALLOWED
    assert "prod-*, staging" in note.message


def test_an_alertname_too_long_is_refused_alone() -> None:
    mapping = map_payload(payload(wire_alert("1", alertname="A" * 257), wire_alert("2")), RULES)
    [target] = mapping.targets
    assert [r.fingerprint for r in target.records] == ["2"]
    [note] = mapping.rejected
    assert note.reason is Reason.INVALID_ALERT
    assert "alert.alertname" in note.message


def test_what_a_new_incident_holds() -> None:
    target = only_target(
        wire_alert("warn", severity="warning", starts=-10),
        wire_alert("crit", severity="critical", starts=0, team="agents"),
        wire_alert("gone", status="resolved", severity="critical", starts=-30),
        key="{}:{alertname=HighErrorRate}",
        commonLabels={"alertname": "HighErrorRate", "namespace": "prod", "cluster": "eu1"},
        commonAnnotations={"summary": "  5xx   rate\nabove 5%  "},
        externalURL="http://am:9093",
    )
    body = target.body()
    spec = IncidentSpec.model_validate(body["spec"])  # what the CRD accepts, too
    # Firing before resolved, the most severe first: "crit" represents the group.
    assert spec.source.fingerprint == "crit"
    assert spec.source.alertname == "HighErrorRate"
    assert spec.source.labels["severity"] == "critical"
    assert spec.source.labels["cluster"] == "eu1"  # common labels, merged
    assert spec.source.labels["team"] == "agents"  # with the alert's own
    assert spec.source.group_key == "{}:{alertname=HighErrorRate}"
    assert [a.fingerprint for a in spec.source.alerts] == ["crit", "warn", "gone"]
    assert spec.source.alerts[2].ends_at == T0 - timedelta(minutes=25)
    assert spec.source.alerts[0].ends_at is None
    assert spec.source.resolved_at is None
    assert spec.title == "5xx rate above 5%"
    assert spec.severity is None
    assert spec.target.name == "web"
    assert body["metadata"]["labels"][LABEL_ALERTNAME] == "HighErrorRate"
    assert body["metadata"]["labels"][LABEL_EPISODE] == "1"
    assert body["metadata"]["labels"][LABEL_GROUP] == target.group_hash[:40]
    assert body["metadata"]["annotations"] == {
        "mitigator.luminamind.io/alertmanager-url": "http://am:9093"
    }


def test_titles() -> None:
    long_summary = {"summary": "word " * 100}
    item = {**wire_alert("1"), "annotations": long_summary}
    title = only_target(item).spec.title
    assert title is not None and len(title) == 256 and title.endswith("…")
    assert only_target(wire_alert("1")).spec.title == "HighErrorRate on prod/web"
    described = {**wire_alert("1"), "annotations": {"description": "pods crash"}}
    assert only_target(described).spec.title == "pods crash"


def test_an_alertname_that_is_no_label_value_is_not_a_label() -> None:
    target = only_target(wire_alert("1", alertname="job:errors:rate5m > 5%"))
    assert LABEL_ALERTNAME not in target.body()["metadata"]["labels"]
    assert target.spec.source.alertname == "job:errors:rate5m > 5%"


def test_duplicate_fingerprints_in_a_payload_are_one_alert() -> None:
    target = only_target(wire_alert("1"), wire_alert("1", status="resolved"))
    assert [(r.fingerprint, r.status) for r in target.records] == [("1", AlertStatus.RESOLVED)]


# ----------------------------------------------------------------- properties

namespace_values = st.sampled_from(["prod", "mt-1", "Prod", "", "a" * 64]) | st.text(max_size=10)
deployment_values = st.sampled_from(["web", "api.v2", "web_app", "", "w" * 254]) | st.text(
    max_size=10
)


@st.composite
def targeted_payloads(draw: st.DrawFn) -> dict[str, Any]:
    sample = draw(webhook_payloads())
    for item in sample["alerts"]:
        if draw(st.booleans()):
            item["labels"]["namespace"] = draw(namespace_values)
        if draw(st.booleans()):
            item["labels"][draw(st.sampled_from(RULES.target_labels))] = draw(deployment_values)
    return sample


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(targeted_payloads())
def test_every_alert_is_accounted_for_once(sample: dict[str, Any]) -> None:
    parsed = WebhookPayload.model_validate(sample)
    mapping = map_payload(parsed, RULES)

    fingerprints = {a.fingerprint for a in parsed.alerts}
    in_targets = [r.fingerprint for t in mapping.targets for r in t.records]
    notes = [n.fingerprint for n in (*mapping.unmapped, *mapping.rejected)]
    assert len(in_targets) == len(set(in_targets))
    assert set(in_targets) | set(notes) == fingerprints
    assert mapping.received == len(parsed.alerts)
    for target in mapping.targets:
        body = target.body()
        IncidentSpec.model_validate(body["spec"])
        assert NAME.fullmatch(body["metadata"]["name"])
        assert len(body["metadata"]["name"]) <= 63
        assert isinstance(decide(target, [], NOW), Create | Skip)
