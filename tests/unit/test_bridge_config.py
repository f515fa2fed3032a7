"""The bridge's settings: MITIGATOR_BRIDGE_* from the environment, the command line winning,
validated once, the token never shown; and that the bridge's pure modules stay pure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mitigator.bridge.config import ConfigError, load_bridge_settings
from mitigator.bridge.limits import StorageLimits
from mitigator.bridge.targets import MappingRules

ROOT = Path(__file__).resolve().parents[2]
PURE_MODULES = (
    "payload",
    "notes",
    "targets",
    "identity",
    "records",
    "grouping",
    "episodes",
    "config",
    "limits",
    "memory",
)
SECRET = "s3cret-from-a-mounted-secret"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No MITIGATOR_BRIDGE_* from the machine running the tests."""
    for name in [name for name in os.environ if name.startswith("MITIGATOR_BRIDGE_")]:
        monkeypatch.delenv(name)
    return monkeypatch


def test_the_pure_modules_import_neither_aiohttp_nor_kubernetes() -> None:
    modules = ", ".join(f"mitigator.bridge.{name}" for name in PURE_MODULES)
    code = (
        f"import sys; import {modules}; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('aiohttp', 'kubernetes', 'kopf', 'urllib3')); print(bad); assert not bad"
    )
    env = {"PYTHONPATH": f"{ROOT / 'operator'}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_settings_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(SECRET + "\n")
    for name, value in {
        "MITIGATOR_BRIDGE_TOKEN_FILE": str(token_file),
        "MITIGATOR_BRIDGE_TARGET_LABELS": "service, app",
        "MITIGATOR_BRIDGE_NAMESPACES": "prod-*,staging",
        "MITIGATOR_BRIDGE_MAX_BODY_BYTES": "2048",
        "MITIGATOR_BRIDGE_CONCURRENCY": "4",
        "MITIGATOR_BRIDGE_HOST": "0.0.0.0",
        "MITIGATOR_BRIDGE_PORT": "9443",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_bridge_settings()
    assert settings.bearer_token().get_secret_value() == SECRET
    assert settings.rules.target_labels == ("service", "app")
    assert settings.rules.allowed_namespaces == ("prod-*", "staging")
    assert (settings.max_body_bytes, settings.concurrency) == (2048, 4)
    assert (settings.host, settings.port) == ("0.0.0.0", 9443)
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(settings)


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MITIGATOR_BRIDGE_TOKEN", "t" * 16)
    monkeypatch.setenv("MITIGATOR_BRIDGE_PORT", "")  # empty counts as unset
    defaults = load_bridge_settings()
    assert defaults.rules == MappingRules()
    assert defaults.max_body_bytes == 1024 * 1024
    assert defaults.concurrency == 16
    assert (defaults.host, defaults.port) == ("127.0.0.1", None)
    assert (defaults.tls_cert, defaults.tls_key) == (None, None)
    assert defaults.limits == StorageLimits(
        max_alerts=100, max_labels=32, max_label_name_bytes=64, max_label_value_bytes=256
    )


def test_protection_pods_and_caps_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "MITIGATOR_BRIDGE_PROTECTED_NAMESPACES": "payments, team-*",
        "MITIGATOR_BRIDGE_POD_LABEL": "exported_pod",
        "MITIGATOR_BRIDGE_MAX_ALERTS_PER_INCIDENT": "20",
        "MITIGATOR_BRIDGE_MAX_LABELS_PER_ALERT": "10",
        "MITIGATOR_BRIDGE_MAX_LABEL_NAME_BYTES": "64",
        "MITIGATOR_BRIDGE_MAX_LABEL_VALUE_BYTES": "1024",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_bridge_settings()
    assert settings.rules.protected_namespaces == ("payments", "team-*")
    assert settings.rules.pod_label == "exported_pod"
    assert settings.limits == StorageLimits(20, 10, 64, 1024)
    # The control plane's namespaces are protected whatever the setting says.
    assert settings.rules.protection("kube-system") is not None
    assert settings.rules.protection("team-a") is not None
    assert settings.rules.protection("prod") is None


def test_the_command_line_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(SECRET)
    monkeypatch.setenv("MITIGATOR_BRIDGE_TOKEN", "from-the-environment-0123456789")
    monkeypatch.setenv("MITIGATOR_BRIDGE_PORT", "9000")
    monkeypatch.setenv("MITIGATOR_BRIDGE_NAMESPACES", "prod")
    monkeypatch.setenv("MITIGATOR_BRIDGE_CONCURRENCY", "4")
    settings = load_bridge_settings(
        port=8443,
        token_file=str(token_file),
        namespaces=["staging", " "],
        target_labels=None,  # not given: the environment's, else the default
        concurrency=None,
    )
    assert settings.port == 8443
    assert settings.bearer_token().get_secret_value() == SECRET  # the file wins
    assert settings.namespaces == ("staging",)
    assert settings.concurrency == 4
    assert settings.rules.target_labels == MappingRules().target_labels


def test_no_token_is_fine_until_a_bridge_needs_one() -> None:
    settings = load_bridge_settings()  # an operator without a bridge reads these too
    assert settings.port is None and settings.token is None
    with pytest.raises(ConfigError, match="no bearer token"):
        settings.bearer_token()
    blank = load_bridge_settings(token="   ")
    with pytest.raises(ConfigError, match="no bearer token"):
        blank.bearer_token()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MITIGATOR_BRIDGE_TOKEN": "short"}, "at least 16"),
        ({"MITIGATOR_BRIDGE_TOKEN_FILE": "/nonexistent/token"}, "cannot read the token file"),
        ({"MITIGATOR_BRIDGE_CONCURRENCY": "x"}, "invalid concurrency"),
        ({"MITIGATOR_BRIDGE_CONCURRENCY": "0"}, "at least 1"),
        ({"MITIGATOR_BRIDGE_MAX_BODY_BYTES": "-1"}, "positive"),
        ({"MITIGATOR_BRIDGE_PORT": "65536"}, "invalid port"),
        ({"MITIGATOR_BRIDGE_PORT": "http"}, "MITIGATOR_BRIDGE_PORT"),
        ({"MITIGATOR_BRIDGE_TARGET_LABELS": " , "}, "invalid target_labels"),
        ({"MITIGATOR_BRIDGE_TLS_CERT": "/tls/cert.pem"}, "go together"),
        ({"MITIGATOR_BRIDGE_TLS_KEY": "/tls/key.pem"}, "go together"),
        ({"MITIGATOR_BRIDGE_MAX_ALERTS_PER_INCIDENT": "101"}, "less than or equal to 100"),
        ({"MITIGATOR_BRIDGE_MAX_LABELS_PER_ALERT": "0"}, "invalid max_labels_per_alert"),
        ({"MITIGATOR_BRIDGE_MAX_LABEL_VALUE_BYTES": "-5"}, "MAX_LABEL_VALUE_BYTES"),
    ],
)
def test_settings_errors(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MITIGATOR_BRIDGE_TOKEN", "t" * 16)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_bridge_settings()


def test_the_token_is_in_no_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MITIGATOR_BRIDGE_TOKEN", "tooshort")
    monkeypatch.setenv("MITIGATOR_BRIDGE_CONCURRENCY", "x")
    with pytest.raises(ConfigError) as raised:
        load_bridge_settings()
    assert "tooshort" not in str(raised.value)
    assert "at least 16" in str(raised.value) and "invalid concurrency" in str(raised.value)
