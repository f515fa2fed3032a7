"""The operator's settings: one validated object from the environment, command line wins."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from mitigator.settings import OperatorSettings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("MITIGATOR_")]:
        monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = OperatorSettings()
    assert settings.prometheus_url is None
    assert settings.protected_namespaces == ()
    assert (settings.tick_seconds, settings.escalation_tick_seconds) == (2.0, 5.0)
    assert settings.verification_refresh_seconds == 30.0
    assert settings.bridge.port is None


def test_from_the_environment_with_the_command_line_winning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MITIGATOR_PROMETHEUS_URL", "http://env:9090")
    monkeypatch.setenv("MITIGATOR_PROTECTED_NAMESPACES", "payments, team-* ,")
    monkeypatch.setenv("MITIGATOR_TICK_SECONDS", "0.5")
    settings = OperatorSettings(prometheus_url="http://flag:9090")
    assert settings.prometheus_url == "http://flag:9090"
    assert settings.protected_namespaces == ("payments", "team-*")
    assert settings.tick_seconds == 0.5


def test_an_empty_prometheus_url_is_none_and_bad_values_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MITIGATOR_PROMETHEUS_URL", "")
    assert OperatorSettings().prometheus_url is None
    monkeypatch.setenv("MITIGATOR_TICK_SECONDS", "0")
    with pytest.raises(ValidationError, match="tick_seconds"):
        OperatorSettings()


def test_the_in_operator_bridge_refuses_what_the_operator_protects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MITIGATOR_PROTECTED_NAMESPACES", "payments")
    monkeypatch.setenv("MITIGATOR_BRIDGE_PROTECTED_NAMESPACES", "team-*")
    settings = OperatorSettings()
    assert settings.bridge_settings().protected_namespaces == ("team-*", "payments")
