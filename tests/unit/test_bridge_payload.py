"""The webhook payload parser: Alertmanager's payloads parse; anything else, whatever the
bytes, is a `PayloadError` (a 400), never another exception (a 500)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mitigator.bridge.payload import (
    INVALID_PAYLOAD,
    MALFORMED_JSON,
    PayloadError,
    WebhookPayload,
    parse_payload,
    parse_timestamp,
)
from tests.unit.alerts import json_values, webhook_payloads

# What Alertmanager 0.25 (Debian) sent in tests/integration/test_monitoring.py, field for field.
ALERTMANAGER_SAMPLE: dict[str, Any] = {
    "receiver": "default",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "HighErrorRate", "deployment": "web", "namespace": "prod"},
            "annotations": {},
            "startsAt": "2025-11-26T14:23:00.123456789Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": "7f3cd0b7b3d9c2a1",
        }
    ],
    "groupLabels": {"alertname": "HighErrorRate", "deployment": "web", "namespace": "prod"},
    "commonLabels": {"alertname": "HighErrorRate", "deployment": "web", "namespace": "prod"},
    "commonAnnotations": {},
    "externalURL": "http://127.0.0.1:9093",
    "version": "4",
    "groupKey": '{}:{alertname="HighErrorRate", deployment="web", namespace="prod"}',
    "truncatedAlerts": 0,
}


def encode(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_alertmanagers_payload_parses() -> None:
    payload = parse_payload(encode(ALERTMANAGER_SAMPLE))

    assert payload.group_key == ALERTMANAGER_SAMPLE["groupKey"]
    [alert] = payload.alerts
    assert alert.alertname == "HighErrorRate"
    assert alert.fingerprint == "7f3cd0b7b3d9c2a1"
    assert alert.starts_at == datetime(2025, 11, 26, 14, 23, 0, 123456, tzinfo=UTC)
    assert alert.ends_at is None  # Go's zero time: still firing
    assert payload.common_labels["namespace"] == "prod"


def test_unknown_fields_are_ignored_and_null_maps_are_empty() -> None:
    sample = {**ALERTMANAGER_SAMPLE, "newField": {"x": 1}, "commonAnnotations": None}
    sample["alerts"] = [{**ALERTMANAGER_SAMPLE["alerts"][0], "annotations": None, "extra": [1]}]
    payload = parse_payload(encode(sample))
    assert payload.common_annotations == {}
    assert payload.alerts[0].annotations == {}


@pytest.mark.parametrize(
    ("body", "reason", "mentions"),
    [
        (b"", MALFORMED_JSON, "malformed JSON"),
        (b"{", MALFORMED_JSON, "malformed JSON"),
        (b"\xff\xfe", MALFORMED_JSON, "malformed JSON"),
        (b'{"version": Infinity}', MALFORMED_JSON, "Infinity is not JSON"),
        (b"[" * 100_000, MALFORMED_JSON, "nested too deeply"),
        (b"1" * 5000, MALFORMED_JSON, "malformed JSON"),  # beyond Python's int digit limit
        (b"[]", INVALID_PAYLOAD, "payload: Input should be"),
        (b"null", INVALID_PAYLOAD, "payload: Input should be"),
        (encode({**ALERTMANAGER_SAMPLE, "version": "3"}), INVALID_PAYLOAD, "payload.version"),
        (encode({**ALERTMANAGER_SAMPLE, "version": 4}), INVALID_PAYLOAD, "payload.version"),
        (encode({**ALERTMANAGER_SAMPLE, "alerts": []}), INVALID_PAYLOAD, "payload.alerts"),
        (encode({**ALERTMANAGER_SAMPLE, "truncatedAlerts": True}), INVALID_PAYLOAD, "truncated"),
        (encode({**ALERTMANAGER_SAMPLE, "groupKey": ""}), INVALID_PAYLOAD, "payload.groupKey"),
    ],
)
def test_what_is_refused_and_why(body: bytes, reason: str, mentions: str) -> None:
    with pytest.raises(PayloadError) as raised:
        parse_payload(body)
    assert raised.value.reason == reason
    assert mentions in raised.value.message


def test_many_problems_are_summarised() -> None:
    bad_alert = {"status": 1, "labels": 2, "annotations": 3, "startsAt": 4, "fingerprint": 5}
    with pytest.raises(PayloadError) as raised:
        parse_payload(encode({**ALERTMANAGER_SAMPLE, "alerts": [bad_alert] * 3}))
    assert raised.value.message.endswith("more")
    assert len(raised.value.message) < 1000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-11-26T14:23:00Z", datetime(2025, 11, 26, 14, 23, tzinfo=UTC)),
        ("2025-11-26t14:23:00z", datetime(2025, 11, 26, 14, 23, tzinfo=UTC)),
        ("2025-11-26T16:23:00.5+02:00", datetime(2025, 11, 26, 14, 23, 0, 500000, tzinfo=UTC)),
        ("2025-11-26T14:23:00.123456789Z", datetime(2025, 11, 26, 14, 23, 0, 123456, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),
    ],
)
def test_timestamps(text: str, expected: datetime | None) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2025-11-26",
        "2025-11-26T14:23:00",  # no time zone
        "2025-13-01T00:00:00Z",
        "2025-11-26T24:00:00Z",
        "9999-12-31T23:59:59-01:00",  # beyond datetime's range once in UTC
        "1732630980",
    ],
)
def test_not_timestamps(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


# ----------------------------------------------------------------- properties


def parses_or_refuses(body: bytes) -> WebhookPayload | None:
    try:
        return parse_payload(body)
    except PayloadError as exc:
        assert exc.reason in (MALFORMED_JSON, INVALID_PAYLOAD)
        assert exc.message
        return None


@given(st.binary(max_size=2048))
def test_any_bytes_parse_or_are_refused(body: bytes) -> None:
    parses_or_refuses(body)


@given(json_values)
def test_any_json_parses_or_is_refused(value: Any) -> None:
    parses_or_refuses(encode(value))


@given(st.text(max_size=300))
def test_any_text_parses_or_is_refused(text: str) -> None:
    parses_or_refuses(text.encode("utf-8", "surrogatepass"))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(webhook_payloads())
def test_alertmanager_payloads_always_parse(sample: dict[str, Any]) -> None:
    payload = parse_payload(encode(sample))

    assert payload.group_key == sample["groupKey"]
    assert payload.common_labels == sample["commonLabels"]
    assert len(payload.alerts) == len(sample["alerts"])
    for parsed, given_alert in zip(payload.alerts, sample["alerts"], strict=True):
        assert parsed.fingerprint == given_alert["fingerprint"]
        assert parsed.labels == given_alert["labels"]
        assert parsed.status == given_alert["status"]
        assert parsed.starts_at is not None and parsed.starts_at.tzinfo == UTC
        assert parsed.starts_at == parse_timestamp(given_alert["startsAt"])
        assert (parsed.ends_at is None) == (given_alert["status"] == "firing")


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A valid payload with one field, at the top or in an alert, replaced or removed."""
    sample = draw(webhook_payloads())
    target = sample if draw(st.booleans()) else draw(st.sampled_from(sample["alerts"]))
    key = draw(st.sampled_from(sorted(target)))
    if draw(st.booleans()):
        del target[key]
    else:
        target[key] = draw(json_values)
    return sample


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_broken_payloads_parse_or_are_refused(sample: dict[str, Any]) -> None:
    parses_or_refuses(encode(sample))


@given(webhook_payloads(), st.integers(min_value=1, max_value=200))
def test_truncated_payloads_are_malformed(sample: dict[str, Any], cut: int) -> None:
    body = encode(sample)
    with pytest.raises(PayloadError) as raised:
        parse_payload(body[: max(len(body) - cut, 0)])
    assert raised.value.reason == MALFORMED_JSON
