"""The Alertmanager bridge inside the operator: started on kopf's event loop when
MITIGATOR_BRIDGE_PORT is set, stopped when the operator stops. Same app as `mitigator bridge`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import kopf

from mitigator.bridge.config import BridgeConfig, ConfigError
from mitigator.bridge.server import Bridge, tls_context
from mitigator.k8s.client import KubeClient


@dataclass(frozen=True)
class BridgeSettings:
    port: int | None
    host: str
    tls_cert: str | None
    tls_key: str | None

    @classmethod
    def from_environment(cls) -> BridgeSettings:
        port = os.environ.get("MITIGATOR_BRIDGE_PORT", "").strip()
        return cls(
            port=int(port) if port else None,
            host=os.environ.get("MITIGATOR_BRIDGE_HOST", "127.0.0.1"),
            tls_cert=os.environ.get("MITIGATOR_BRIDGE_TLS_CERT") or None,
            tls_key=os.environ.get("MITIGATOR_BRIDGE_TLS_KEY") or None,
        )


async def start_bridge(memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    settings = BridgeSettings.from_environment()
    if settings.port is None:
        return
    try:
        config = BridgeConfig.from_environment()
        ssl_context = (
            tls_context(settings.tls_cert, settings.tls_key)
            if settings.tls_cert and settings.tls_key
            else None
        )
    except (ConfigError, OSError) as exc:
        raise kopf.PermanentError(f"the Alertmanager bridge cannot start: {exc}") from None
    kube = KubeClient.from_environment_pooled(pool_size=config.concurrency)
    bridge = Bridge(kube, config)
    try:
        port = await bridge.start(settings.host, settings.port, ssl_context)
    except OSError as exc:
        # Loud and final: an operator that retried forever here would never start mitigating.
        await bridge.stop()
        raise kopf.PermanentError(
            f"the Alertmanager bridge cannot listen on {settings.host}:{settings.port}: {exc}"
        ) from None
    memo.bridge = bridge
    logger.info("Alertmanager bridge listening on %s:%s", settings.host, port)


async def stop_bridge(memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    bridge = memo.get("bridge")
    if isinstance(bridge, Bridge):
        await bridge.stop()
        logger.info("Alertmanager bridge stopped")


def register(registry: kopf.OperatorRegistry) -> None:
    kopf.on.startup(registry=registry)(start_bridge)
    kopf.on.cleanup(registry=registry)(stop_bridge)
