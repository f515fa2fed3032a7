"""Alerts to targets to Incidents, without a server: names, what an Incident holds, how
resends, new alerts and resolutions merge, when a group opens a new episode; and that the
pure modules stay pure."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mitigator.bridge.config import BridgeConfig, ConfigError
from mitigator.bridge.mapping import (
    LABEL_ALERTNAME,
    LABEL_EPISODE,
    LABEL_GROUP,
    MAX_RECORDED_ALERTS,
    Create,
    Keep,
    MappingRules,
    Patch,
    Reason,
    Skip,
    TargetAlerts,
    cap_records,
    decide,
    group_hash,
    incident_name,
    map_payload,
    merge_records,
    resolution,
)
from mitigator.bridge.payload import WebhookPayload
from mitigator.models import AlertRecord, AlertStatus, IncidentSpec
from mitigator.models.common import DNS1123_SUBDOMAIN_PATTERN
from tests.unit.test_bridge_payload import webhook_payloads

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 11, 26, 14, 23, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)
RULES = MappingRules()


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def wire_alert(
    fingerprint: str,
    *,
    status: str = "firing",
    namespace: str | None = "prod",
    deployment: str | None = "web",
    starts: float = 0,
    ends: float | None = None,
    **labels: str,
) -> dict[str, Any]:
    all_labels = {"alertname": "HighErrorRate", **labels}
    if namespace is not None:
        all_labels["namespace"] = namespace
    if deployment is not None:
        all_labels["deployment"] = deployment
    return {
        "status": status,
        "labels": all_labels,
        "annotations": {},
        "startsAt": at(starts),
        "endsAt": at(ends if ends is not None else starts + 5)
        if status == "resolved"
        else "0001-01-01T00:00:00Z",
        "fingerprint": fingerprint,
    }


def payload(*alerts: dict[str, Any], key: str = "{}:{alertname=X}", **extra: Any) -> WebhookPayload:
    return WebhookPayload.model_validate(
        {"version": "4", "groupKey": key, "status": "firing", "alerts": list(alerts), **extra}
    )


def only_target(*alerts: dict[str, Any], **extra: Any) -> TargetAlerts:
    mapping = map_payload(payload(*alerts, **extra), RULES)
    [target] = mapping.targets
    return target


def record(fingerprint: str, status: str = "firing", starts: float = 0, **kw: Any) -> AlertRecord:
    return AlertRecord(
        fingerprint=fingerprint,
        status=AlertStatus(status),
        starts_at=T0 + timedelta(minutes=starts),
        **kw,
    )


def existing(
    target: TargetAlerts,
    *,
    alerts: list[AlertRecord],
    episode: int = 1,
    phase: str | None = None,
    resolved_at: str | None = None,
) -> dict[str, Any]:
    """An Incident as the API server returns it, for `target`'s group."""
    body = target.body(episode)
    body["metadata"]["resourceVersion"] = "42"
    body["spec"]["source"]["alerts"] = [a.to_api_dict() for a in alerts]
    if resolved_at:
        body["spec"]["source"]["resolvedAt"] = resolved_at
    if phase:
        body["status"] = {"phase": phase}
    return body


# ----------------------------------------------------------------- names

NAME = re.compile(DNS1123_SUBDOMAIN_PATTERN)


def test_names_are_deterministic_and_distinct() -> None:
    digest = group_hash("{}:{a=b}", "prod", "web")
    assert incident_name("web", digest) == incident_name(
        "web", group_hash("{}:{a=b}", "prod", "web")
    )
    assert re.fullmatch(r"web-[0-9a-f]{16}", incident_name("web", digest))
    others = {
        incident_name("web", group_hash("{}:{a=c}", "prod", "web")),
        incident_name("web", group_hash("{}:{a=b}", "staging", "web")),
        incident_name("web", group_hash("{}:{a=b}", "prod", "web2")),
        incident_name("web", digest),
    }
    assert len(others) == 4
    assert incident_name("web", digest, 2) == incident_name("web", digest) + "-2"


@pytest.mark.parametrize(
    "deployment", ["a", "web", "x" * 253, "a" * 39 + "-b" * 30, "api.v2.example", "a" * 39 + ".b"]
)
def test_names_fit_in_63_characters(deployment: str) -> None:
    for episode in (1, 2, 9999):
        name = incident_name(deployment, group_hash("k", "ns", deployment), episode)
        assert len(name) <= 63
        assert NAME.fullmatch(name), name


deployments = st.from_regex(
    r"[a-z0-9]([-a-z0-9]{0,60}[a-z0-9])?(\.[a-z0-9]{1,20}){0,3}", fullmatch=True
)


@given(deployments, st.text(min_size=1, max_size=200), st.integers(min_value=1, max_value=9999))
def test_any_deployment_gives_a_valid_name(deployment: str, key: str, episode: int) -> None:
    name = incident_name(deployment, group_hash(key, "ns", deployment), episode)
    assert len(name) <= 63 and NAME.fullmatch(name), name


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
            wire_alert("3", namespace="kube-system"),
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


# ----------------------------------------------------------------- merging


def test_merge_updates_by_fingerprint_and_appends_new_alerts() -> None:
    merged = merge_records(
        [record("a"), record("b")],
        [record("b", "resolved", ends_at=T0 + timedelta(minutes=3)), record("c")],
    )
    assert [(r.fingerprint, r.status.value) for r in merged] == [
        ("a", "firing"),
        ("b", "resolved"),
        ("c", "firing"),
    ]


def test_stale_states_do_not_overwrite_newer_ones() -> None:
    resolved = record("a", "resolved", starts=0, ends_at=T0 + timedelta(minutes=5))
    # The same firing episode, delivered late: stays resolved.
    assert merge_records([resolved], [record("a", "firing", starts=0)]) == [resolved]
    # The alert fired again (a later start): firing.
    refired = record("a", "firing", starts=30)
    assert merge_records([resolved], [refired]) == [refired]
    # An older episode's resolution does not resolve the newer firing.
    assert merge_records([refired], [resolved]) == [refired]


def test_at_most_100_alerts_firing_and_recent_first() -> None:
    old_resolved = [
        record(f"r{i}", "resolved", starts=i, ends_at=T0 + timedelta(minutes=i + 1))
        for i in range(60)
    ]
    firing = [record(f"f{i}", starts=i) for i in range(60)]
    kept = cap_records([*old_resolved, *firing])
    assert len(kept) == MAX_RECORDED_ALERTS
    assert {r.fingerprint for r in kept} >= {f"f{i}" for i in range(60)}
    assert {r.fingerprint for r in kept if r.status is AlertStatus.RESOLVED} == {
        f"r{i}" for i in range(20, 60)
    }
    assert [r.fingerprint for r in kept][:40] == [f"r{i}" for i in range(20, 60)]  # order kept


def test_resolution() -> None:
    ended = T0 + timedelta(minutes=7)
    done = [record("a", "resolved", ends_at=T0), record("b", "resolved", ends_at=ended)]
    assert resolution(done, None, NOW) == ended
    assert resolution(done, T0, NOW) == T0  # once recorded, it stays
    assert resolution([*done, record("c")], T0, NOW) is None
    assert resolution([record("a", "resolved")], None, NOW) == NOW  # no endsAt given
    assert resolution([], None, NOW) is None


# ----------------------------------------------------------------- decisions


def test_decide_create_or_skip_when_the_group_has_no_incident() -> None:
    firing = only_target(wire_alert("a"))
    decision = decide(firing, [], NOW)
    assert isinstance(decision, Create) and decision.episode == 1
    assert decision.name == firing.name()
    resolved = only_target(wire_alert("a", status="resolved"))
    assert isinstance(decide(resolved, [], NOW), Skip)


def test_decide_keep_a_resend() -> None:
    target = only_target(wire_alert("a"))
    decision = decide(target, [existing(target, alerts=list(target.records))], NOW)
    assert decision == Keep(target.name(), 1)


def test_decide_patch_with_optimistic_concurrency() -> None:
    target = only_target(wire_alert("a", status="resolved", ends=9))
    current = existing(target, alerts=[record("a")])
    decision = decide(target, [current], NOW)
    assert isinstance(decision, Patch)
    assert decision.name == target.name()
    assert decision.patch["metadata"] == {"resourceVersion": "42"}
    source = decision.patch["spec"]["source"]
    assert source["resolvedAt"] == at(9)
    assert [a["status"] for a in source["alerts"]] == ["resolved"]
    assert set(decision.patch["spec"]) == {"source"}  # nothing else is touched


def test_a_refire_reopens_an_incident_the_operator_is_still_on() -> None:
    target = only_target(wire_alert("a", starts=30))
    current = existing(
        target,
        alerts=[record("a", "resolved", ends_at=T0)],
        phase="Verifying",
        resolved_at=at(5),
    )
    decision = decide(target, [current], NOW)
    assert isinstance(decision, Patch)
    assert decision.patch["spec"]["source"]["resolvedAt"] is None  # a merge patch deletes it


def test_a_closed_incident_gets_a_next_episode_for_a_new_firing_only() -> None:
    stale = only_target(wire_alert("a", starts=0))
    resolved = [record("a", "resolved", ends_at=T0)]
    current = existing(stale, alerts=resolved, phase="Resolved", resolved_at=at(5))
    assert isinstance(decide(stale, [current], NOW), Keep)

    later = only_target(wire_alert("a", starts=90))
    decision = decide(later, [current], NOW)
    assert isinstance(decision, Create) and decision.episode == 2
    assert decision.name == later.name(2)
    assert decision.body["metadata"]["labels"][LABEL_EPISODE] == "2"

    other = only_target(wire_alert("b", starts=0))
    assert isinstance(decide(other, [current], NOW), Create)

    # Failed is final too; Escalated is not (people still work on it).
    failed = existing(stale, alerts=[record("a", "resolved")], phase="Failed", resolved_at=at(5))
    assert isinstance(decide(later, [failed], NOW), Create)
    escalated = existing(
        stale, alerts=[record("a", "resolved")], phase="Escalated", resolved_at=at(5)
    )
    assert isinstance(decide(later, [escalated], NOW), Patch)


def test_the_latest_episode_takes_the_alerts() -> None:
    target = only_target(wire_alert("a", starts=90))
    first = existing(target, alerts=[record("a", "resolved")], phase="Resolved", resolved_at=at(5))
    second = existing(target, alerts=list(target.records), episode=2)
    decision = decide(target, [second, first], NOW)
    assert decision == Keep(target.name(2), 1)


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


# ----------------------------------------------------------------- purity and settings


def test_the_pure_modules_import_neither_aiohttp_nor_kubernetes() -> None:
    code = (
        "import sys; import mitigator.bridge.payload, mitigator.bridge.mapping, "
        "mitigator.bridge.config; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('aiohttp', 'kubernetes', 'kopf', 'urllib3')); print(bad); assert not bad"
    )
    env = {"PYTHONPATH": f"{ROOT / 'operator'}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_config_from_the_environment(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-from-a-mounted-secret\n")
    config = BridgeConfig.from_environment(
        {
            "MITIGATOR_BRIDGE_TOKEN_FILE": str(token_file),
            "MITIGATOR_BRIDGE_TARGET_LABELS": "service, app",
            "MITIGATOR_BRIDGE_NAMESPACES": "prod-*,staging",
            "MITIGATOR_BRIDGE_MAX_BODY_BYTES": "2048",
            "MITIGATOR_BRIDGE_CONCURRENCY": "4",
        }
    )
    assert config.token == "s3cret-from-a-mounted-secret"
    assert config.rules.target_labels == ("service", "app")
    assert config.rules.allowed_namespaces == ("prod-*", "staging")
    assert (config.max_body_bytes, config.concurrency) == (2048, 4)
    assert "s3cret" not in repr(config)

    defaults = BridgeConfig.from_environment({"MITIGATOR_BRIDGE_TOKEN": "t" * 16})
    assert defaults.rules == MappingRules()
    assert defaults.max_body_bytes == 1024 * 1024


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no bearer token"),
        ({"MITIGATOR_BRIDGE_TOKEN": "short"}, "at least 16"),
        ({"MITIGATOR_BRIDGE_TOKEN_FILE": "/nonexistent/token"}, "cannot read the token file"),
        ({"MITIGATOR_BRIDGE_TOKEN": "t" * 16, "MITIGATOR_BRIDGE_CONCURRENCY": "x"}, "invalid"),
        ({"MITIGATOR_BRIDGE_TOKEN": "t" * 16, "MITIGATOR_BRIDGE_MAX_BODY_BYTES": "-1"}, "positive"),
    ],
)
def test_config_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BridgeConfig.from_environment(env)
