"""`mitigator bridge`: the environment's settings with the command line winning, port 8080
when none is set, and a refusal (exit 2) that never shows the token."""

from __future__ import annotations

import os
from typing import Any

import pytest

from mitigator.bridge import server
from mitigator.cli import main
from mitigator.k8s import KubeClient

TOKEN = "bridge-cli-token-0123456789"


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What `mitigator bridge` would serve, instead of serving it."""
    for name in [name for name in os.environ if name.startswith("MITIGATOR_BRIDGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("MITIGATOR_BRIDGE_TOKEN", TOKEN)
    monkeypatch.setattr(
        KubeClient, "from_environment_pooled", classmethod(lambda cls, *_, **__: cls.__new__(cls))
    )
    seen: dict[str, Any] = {}

    async def serve(bridge: server.Bridge, host: str, port: int, ssl_context: Any) -> None:
        seen.update(bridge=bridge, host=host, port=port, ssl_context=ssl_context)
        await bridge.stop()

    monkeypatch.setattr(server, "serve_until_signalled", serve)
    return seen


def test_defaults_then_environment_then_command_line(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["bridge"]) == 0
    assert (served["host"], served["port"], served["ssl_context"]) == ("127.0.0.1", 8080, None)

    monkeypatch.setenv("MITIGATOR_BRIDGE_HOST", "0.0.0.0")
    monkeypatch.setenv("MITIGATOR_BRIDGE_PORT", "9000")
    monkeypatch.setenv("MITIGATOR_BRIDGE_NAMESPACES", "prod-*")
    assert main(["bridge"]) == 0
    assert (served["host"], served["port"]) == ("0.0.0.0", 9000)
    assert served["bridge"].service.rules.allowed_namespaces == ("prod-*",)

    assert main(["bridge", "--port", "9100", "--namespace", "staging", "--concurrency", "3"]) == 0
    assert (served["host"], served["port"]) == ("0.0.0.0", 9100)
    assert served["bridge"].service.rules.allowed_namespaces == ("staging",)


@pytest.mark.parametrize(
    "case",
    [
        (["--tls-cert", "/tls/cert.pem"], {}, "--tls-cert and --tls-key go together"),
        ([], {"MITIGATOR_BRIDGE_TLS_KEY": "/tls/key.pem"}, "go together"),
        (["--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem"], {}, "No such"),
        (["--concurrency", "0"], {}, "at least 1"),
        ([], {"MITIGATOR_BRIDGE_TOKEN": ""}, "no bearer token"),
        ([], {"MITIGATOR_BRIDGE_TOKEN": "not-long-enough"}, "at least 16"),
    ],
)
def test_refusals_exit_2(
    served: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: tuple[list[str], dict[str, str], str],
) -> None:
    argv, env, message = case
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["bridge", *argv]) == 2
    error = capsys.readouterr().err
    assert error.startswith("mitigator bridge: ") and message in error
    assert "not-long-enough" not in error and TOKEN not in error
    assert served == {}


def test_no_token_is_refused_before_the_cluster_is_looked_for(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_cluster(*_: Any, **__: Any) -> KubeClient:
        raise AssertionError("no cluster configuration should be read")

    monkeypatch.setattr(KubeClient, "from_environment_pooled", no_cluster)
    monkeypatch.delenv("MITIGATOR_BRIDGE_TOKEN")
    assert main(["bridge"]) == 2
    assert "no bearer token" in capsys.readouterr().err
