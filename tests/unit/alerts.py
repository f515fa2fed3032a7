"""Alerts and webhook payloads for the bridge's unit tests: hand-written ones and hypothesis
strategies that generate what Alertmanager could send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from mitigator.bridge.grouping import TargetAlerts, map_payload
from mitigator.bridge.payload import WebhookPayload
from mitigator.bridge.targets import MappingRules

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


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)
label_names = st.sampled_from(
    ["alertname", "namespace", "deployment", "app", "severity", "team"]
) | st.text(min_size=1, max_size=20)
label_maps = st.dictionaries(label_names, st.text(max_size=40), max_size=6)
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
)
moments = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=zones
)


@st.composite
def rfc3339(draw: st.DrawFn) -> str:
    """A timestamp as Go writes it: fraction of 0 to 9 digits, Z or an offset."""
    moment = draw(moments)
    digits = draw(st.integers(min_value=0, max_value=9))
    fraction = f".{moment.microsecond:06d}{draw(st.integers(0, 999)):03d}"[: digits + 1]
    offset = moment.strftime("%z")
    zone = "Z" if offset == "+0000" else f"{offset[:3]}:{offset[3:]}"
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (fraction if digits else "") + zone


@st.composite
def webhook_alerts(draw: st.DrawFn) -> dict[str, Any]:
    status = draw(st.sampled_from(["firing", "resolved"]))
    item: dict[str, Any] = {
        "status": status,
        "labels": draw(label_maps),
        "annotations": draw(label_maps),
        "startsAt": draw(rfc3339()),
        "endsAt": draw(rfc3339()) if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": draw(st.text(max_size=30)),
        "fingerprint": draw(st.text(min_size=1, max_size=128)),
    }
    if draw(st.booleans()):
        item["somethingNew"] = draw(json_values)
    return item


@st.composite
def webhook_payloads(draw: st.DrawFn) -> dict[str, Any]:
    alerts = draw(st.lists(webhook_alerts(), min_size=1, max_size=6))
    return {
        "version": "4",
        "groupKey": draw(st.text(min_size=1, max_size=1024)),
        "truncatedAlerts": draw(st.integers(min_value=0, max_value=10**6)),
        "status": draw(st.sampled_from(["firing", "resolved"])),
        "receiver": draw(st.text(max_size=20)),
        "groupLabels": draw(label_maps),
        "commonLabels": draw(label_maps),
        "commonAnnotations": draw(label_maps),
        "externalURL": draw(st.text(max_size=40)),
        "alerts": alerts,
    }
