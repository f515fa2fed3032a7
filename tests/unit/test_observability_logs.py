"""The operator's log pipeline: one JSON object per line for our records and kopf's (kopf's
object named as ours are), readable console lines on request, and registered secrets masked in
every field, including a traceback and an HTTP library's split host/path line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from mitigator.observability.logs import (
    REDACTED,
    configure_logging,
    get_logger,
    register_secret,
    register_secret_url,
)


@pytest.fixture
def pipeline(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    yield capsys
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "mitigator"]:
        root.removeHandler(handler)
    structlog.reset_defaults()


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_ours_and_kopfs_records_are_json_lines_naming_the_incident(
    pipeline: pytest.CaptureFixture[str],
) -> None:
    configure_logging(fmt="json", level="INFO")
    get_logger("mitigator.test").info(
        "phase changed", namespace="shop", incident="errors", target="web", phase="Resolved"
    )
    kopf_ref = {"kind": "Incident", "name": "errors", "namespace": "shop"}
    logging.getLogger("kopf.objects").info("Timer 'tick' succeeded.", extra={"k8s_ref": kopf_ref})
    logging.getLogger("kopf.objects").debug("dropped below INFO")
    ours, kopfs = _lines(pipeline)
    assert ours["event"] == "phase changed" and ours["level"] == "info"
    assert (ours["namespace"], ours["incident"], ours["target"], ours["phase"]) == (
        "shop",
        "errors",
        "web",
        "Resolved",
    )
    assert "timestamp" in ours and ours["logger"] == "mitigator.test"
    assert (kopfs["event"], kopfs["namespace"], kopfs["incident"]) == (
        "Timer 'tick' succeeded.",
        "shop",
        "errors",
    )


def test_secrets_are_masked_everywhere(pipeline: pytest.CaptureFixture[str]) -> None:
    configure_logging(fmt="json", level="DEBUG")
    register_secret("bearer-0123456789")
    register_secret_url("https://hooks.slack.com/services/T0/B0/abcdef123456")
    get_logger().info("sent", detail="token bearer-0123456789 used")
    logging.getLogger("urllib3.connectionpool").warning(
        'https://hooks.slack.com:443 "POST /services/T0/B0/abcdef123456 HTTP/1.1" 200'
    )
    try:
        raise RuntimeError("failed https://hooks.slack.com/services/T0/B0/abcdef123456")
    except RuntimeError:
        get_logger().exception("delivery crashed")
    text = pipeline.readouterr().err
    assert "bearer-0123456789" not in text and "abcdef123456" not in text
    assert text.count(REDACTED) >= 3
    register_secret("abc")  # too short to mask without masking ordinary words
    get_logger().info("abc stays readable")
    assert "abc stays readable" in pipeline.readouterr().err


def test_console_format_is_readable(pipeline: pytest.CaptureFixture[str]) -> None:
    configure_logging(fmt="console", level="INFO")
    get_logger().info("phase changed", incident="errors")
    line = pipeline.readouterr().err
    assert "phase changed" in line and "incident=errors" in line
    with pytest.raises(ValueError):
        json.loads(line)


def test_a_policys_secret_becomes_a_connection_whose_secrets_are_masked(
    pipeline: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from mitigator.metrics.prometheus import connection_from_secret

    configure_logging(fmt="json", level="INFO")
    connection = connection_from_secret(
        {
            "token": "tenant-token-0123456789\n",
            "ca.crt": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            "tls.crt": "CERT",
            "header.X-Scope-OrgID": "team-a",
        },
        files=tmp_path / "pem",
    )
    assert connection.cert_file is None, "a certificate without its key is not used"
    assert connection.ca_file is not None
    assert (Path(connection.ca_file).stat().st_mode & 0o777) == 0o600
    options = connection.request_options()
    assert options["verify"] == connection.ca_file
    assert options["headers"] == {
        "X-Scope-OrgID": "team-a",
        "Authorization": "Bearer tenant-token-0123456789",
    }
    get_logger().info("query", detail="Authorization: Bearer tenant-token-0123456789")
    assert "tenant-token-0123456789" not in pipeline.readouterr().err
