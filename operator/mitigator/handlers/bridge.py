"""The Alertmanager bridge inside the operator: started on kopf's event loop when the bridge's
settings give a port (MITIGATOR_BRIDGE_PORT), stopped when the operator stops. Same app and
same settings as `mitigator bridge`."""

from __future__ import annotations

from typing import Any

import kopf

from mitigator.bridge.config import ConfigError
from mitigator.bridge.server import Bridge, tls_context
from mitigator.settings import OperatorSettings


async def start_bridge(memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    operator_settings: OperatorSettings = memo.settings
    settings = operator_settings.bridge_settings()
    try:
        if settings.port is None:
            return
        ssl_context = tls_context(settings)
        bridge = Bridge.from_settings(settings)
    except (ConfigError, OSError) as exc:
        raise kopf.PermanentError(f"the Alertmanager bridge cannot start: {exc}") from None
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
