"""The bridge inside the operator: off without a port (and then no token is needed), on with
one, from the operator's settings; a bridge that cannot start is final."""

from __future__ import annotations

import asyncio
import logging
import os

import kopf
import pytest

from mitigator.bridge.config import load_bridge_settings
from mitigator.bridge.server import Bridge
from mitigator.handlers.bridge import start_bridge, stop_bridge
from mitigator.k8s import KubeClient
from mitigator.settings import OperatorSettings

LOGGER = logging.getLogger("test")


@pytest.fixture(autouse=True)
def no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("MITIGATOR_BRIDGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(
        KubeClient, "from_environment_pooled", classmethod(lambda cls, *_, **__: cls.__new__(cls))
    )


def _memo() -> kopf.Memo:
    """The operator's memo as its start-up leaves it: the settings, read from the environment."""
    memo = kopf.Memo()
    memo.settings = OperatorSettings()
    return memo


def test_no_port_no_bridge() -> None:
    memo = _memo()
    asyncio.run(start_bridge(memo=memo, logger=LOGGER))
    assert "bridge" not in memo


def test_a_port_without_a_token_stops_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MITIGATOR_BRIDGE_PORT", "0")
    with pytest.raises(kopf.PermanentError, match="cannot start: no bearer token"):
        asyncio.run(start_bridge(memo=_memo(), logger=LOGGER))


def test_the_operators_settings_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MITIGATOR_BRIDGE_TOKEN", "short")  # would be refused if read
    memo = kopf.Memo()
    memo.settings = OperatorSettings(
        bridge=load_bridge_settings(token="t" * 16, port=0, namespaces=["prod"])
    )

    async def start_and_stop() -> None:
        await start_bridge(memo=memo, logger=LOGGER)
        bridge = memo.bridge
        assert isinstance(bridge, Bridge) and bridge.port
        assert bridge.service.rules.allowed_namespaces == ("prod",)
        await stop_bridge(memo=memo, logger=LOGGER)

    asyncio.run(start_and_stop())
