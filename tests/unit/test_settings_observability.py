"""The operator settings of issue 11: log format and level, /metrics port, the Prometheus
connection (TLS verified unless told otherwise) and the ceilings, from the environment."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from mitigator.cli import build_parser
from mitigator.settings import OperatorSettings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("MITIGATOR_")]:
        monkeypatch.delenv(name)


def test_defaults_verify_tls_and_allow_nothing_beyond_the_default() -> None:
    settings = OperatorSettings()
    assert (settings.log_format, settings.log_level, settings.metrics_port) == (None, "INFO", None)
    connection = settings.prometheus_connection()
    assert connection.verify() is True and connection.headers == {}
    ceilings = settings.ceilings()
    assert ceilings.allowed_prometheus_urls == () and ceilings.allowed_webhook_hosts == ()
    assert "kube-system" in ceilings.protected_namespaces


def test_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MITIGATOR_LOG_FORMAT", "json")
    monkeypatch.setenv("MITIGATOR_METRICS_PORT", "9102")
    monkeypatch.setenv("MITIGATOR_PROMETHEUS_CA_FILE", "/etc/ca.crt")
    monkeypatch.setenv("MITIGATOR_PROMETHEUS_HEADERS", "X-Scope-OrgID=team-a, X-Extra=1")
    monkeypatch.setenv("MITIGATOR_ALLOWED_WEBHOOK_HOSTS", "hooks.slack.com, *.pagerduty.com")
    monkeypatch.setenv("MITIGATOR_MAX_REPLICAS", "40")
    settings = OperatorSettings()
    assert settings.metrics_port == 9102 and settings.log_format == "json"
    connection = settings.prometheus_connection()
    assert connection.verify() == "/etc/ca.crt"
    assert connection.headers == {"X-Scope-OrgID": "team-a", "X-Extra": "1"}
    assert settings.ceilings().allowed_webhook_hosts == ("hooks.slack.com", "*.pagerduty.com")
    assert settings.ceilings().max_replicas == 40


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MITIGATOR_LOG_FORMAT", "xml", "log_format"),
        ("MITIGATOR_PROMETHEUS_HEADERS", "no-equals-sign", "Name=value"),
        ("MITIGATOR_PROMETHEUS_CERT_FILE", "/c.crt", "go together"),
        ("MITIGATOR_PROMETHEUS_USERNAME", "me", "go together"),
    ],
)
def test_bad_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        OperatorSettings()


def test_run_takes_log_format_and_level() -> None:
    args = build_parser().parse_args(["run", "--log-format", "console", "--log-level", "debug"])
    assert (args.log_format, args.log_level) == ("console", "debug")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--log-format", "yaml"])
