"""Durations: "90s", "10m", "1h30m", "250ms" on the wire, timedelta in Python."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from mitigator.models import Guardrails, format_duration, parse_duration
from mitigator.models.common import DURATION_PATTERN


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0s", timedelta()),
        ("90s", timedelta(seconds=90)),
        ("10m", timedelta(minutes=10)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("250ms", timedelta(milliseconds=250)),
        ("1m30s", timedelta(seconds=90)),
        ("5m30ms", timedelta(minutes=5, milliseconds=30)),
        ("2h2h", timedelta(hours=4)),
        ("36h", timedelta(hours=36)),
    ],
)
def test_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "10", "m", "-5m", "1.5h", "10 m", "10min", "1d", "PT10M", " 10m", "10m ", "10M"]
)
def test_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)
    assert re.fullmatch(DURATION_PATTERN, text) is None  # the CRD refuses it too


def test_too_long_is_refused_like_the_crd_max_length() -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("1s" * 17)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(), "0s"),
        (timedelta(minutes=10), "10m"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=1), "24h"),
        (timedelta(seconds=1, milliseconds=5), "1s5ms"),
    ],
)
def test_format(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


def test_format_refuses_negative() -> None:
    with pytest.raises(ValueError):
        format_duration(timedelta(seconds=-1))


@given(st.integers(min_value=0, max_value=10**9).map(lambda ms: timedelta(milliseconds=ms)))
def test_format_then_parse_round_trips(value: timedelta) -> None:
    text = format_duration(value)
    assert re.fullmatch(DURATION_PATTERN, text)
    assert parse_duration(text) == value


@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=9999), st.sampled_from(["ms", "s", "m", "h"])),
        min_size=1,
        max_size=4,
    )
)
def test_anything_the_crd_pattern_accepts_parses(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{amount}{unit}" for amount, unit in parts)
    assert re.fullmatch(DURATION_PATTERN, text)
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    assert parse_duration(text).total_seconds() == pytest.approx(
        sum(amount * unit[name] for amount, name in parts)
    )


def test_a_duration_field_reads_strings_and_writes_them_back() -> None:
    guardrails = Guardrails.model_validate({"cooldown": "1h30m"})
    assert guardrails.cooldown == timedelta(hours=1, minutes=30)
    assert guardrails.to_api_dict()["cooldown"] == "1h30m"
    assert Guardrails(cooldown=timedelta(minutes=5)).cooldown == timedelta(minutes=5)


@pytest.mark.parametrize("value", [600, 1.5, [], timedelta(seconds=-1), "10 minutes"])
def test_a_duration_field_refuses_non_durations(value: object) -> None:
    with pytest.raises(ValidationError, match="cooldown"):
        Guardrails.model_validate({"cooldown": value})
