"""The bridge's HTTP side (aiohttp): ``POST /api/v1/alerts``, ``GET /healthz``,
``GET /metrics``.

A webhook request is checked in this order, and the first failed check answers:

1. ``Authorization: Bearer <token>`` (constant-time comparison) → 401;
2. ``Content-Type: application/json`` → 415;
3. at most ``max_body_bytes`` (declared length, then the bytes actually read) → 413;
4. JSON, and an Alertmanager version 4 payload → 400 (`malformed_json`, `invalid_payload`).

Every error is JSON, ``{"error": <code>, "message": <why>}`` (what the sender wrote clipped),
and nothing is written to the cluster for a refused request. What a payload that passes
becomes is `BridgeService.accept`'s answer (200; 422, or 413 ``incident_too_large`` when the
API server will not store the Incident; 503 when the API server fails).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import signal
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr

from mitigator.bridge.config import BridgeSettings
from mitigator.bridge.notes import clip
from mitigator.bridge.payload import PayloadError, parse_payload
from mitigator.bridge.service import Answer, BridgeService
from mitigator.bridge.telemetry import BridgeMetrics
from mitigator.k8s import KubeClient

log = logging.getLogger("mitigator.bridge")

ALERTS_PATH = "/api/v1/alerts"
_SERVICE: web.AppKey[BridgeService] = web.AppKey("service", BridgeService)
_METRICS: web.AppKey[BridgeMetrics] = web.AppKey("metrics", BridgeMetrics)
_TOKEN: web.AppKey[bytes] = web.AppKey("token", bytes)
_MAX_BODY_BYTES: web.AppKey[int] = web.AppKey("max_body_bytes", int)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, code: str, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


class Refused(Exception):
    """A request refused as a whole, before anything is written."""

    def __init__(self, status: int, code: str, message: str, **headers: str) -> None:
        super().__init__(message)
        self.response = error(status, code, message, **headers)
        self.code = code


def _check_token(request: web.Request, token: bytes) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="mitigator-bridge"'}
    if not header:
        raise Refused(401, "unauthorized", "a bearer token is required", **challenge)
    if scheme.lower() != "bearer":
        raise Refused(401, "unauthorized", "the Authorization scheme must be Bearer", **challenge)
    given = credentials.strip().encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(given, token):
        raise Refused(401, "unauthorized", "the bearer token is not valid", **challenge)


async def _read_payload(request: web.Request, limit: int) -> bytes:
    if request.content_type != "application/json":
        raise Refused(
            415,
            "unsupported_media_type",
            f"Content-Type must be application/json, not {clip(request.content_type)}",
        )
    too_large = f"the request body is larger than {limit} bytes"
    if request.content_length is not None and request.content_length > limit:
        raise Refused(413, "payload_too_large", too_large)
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise Refused(413, "payload_too_large", too_large) from None


async def post_alerts(request: web.Request) -> web.Response:
    service = request.app[_SERVICE]
    metrics = request.app[_METRICS]
    try:
        _check_token(request, request.app[_TOKEN])
        body = await _read_payload(request, request.app[_MAX_BODY_BYTES])
        try:
            payload = parse_payload(body)
        except PayloadError as exc:
            raise Refused(400, exc.reason, exc.message) from None
    except Refused as refused:
        metrics.requests_rejected.labels(refused.code).inc()
        log.warning("bridge: request refused (%s): %s", refused.code, refused)
        return refused.response
    answer: Answer = await service.accept(payload)
    return web.json_response(answer.body, status=answer.status)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def metrics_endpoint(request: web.Request) -> web.Response:
    output = generate_latest(request.app[_METRICS].registry)
    return web.Response(body=output, headers={"Content-Type": CONTENT_TYPE_LATEST})


@web.middleware
async def _observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """JSON errors for whatever aiohttp answers itself (404, 405), a 500 that does not leak
    a traceback, and the request counter and latency for the webhook path."""
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    except Exception:
        log.exception("bridge: unexpected failure on %s %s", request.method, request.path)
        response = error(500, "internal_error", "unexpected failure; see the bridge's log")
    if request.path == ALERTS_PATH:
        metrics = request.app[_METRICS]
        metrics.requests.labels(str(response.status)).inc()
        metrics.latency.observe(time.perf_counter() - started)
    return response


def create_app(service: BridgeService, token: SecretStr, max_body_bytes: int) -> web.Application:
    # The body limit is enforced by _read_payload; aiohttp's own limit backs it up for bodies
    # without a declared length.
    app = web.Application(client_max_size=max_body_bytes, middlewares=[_observe])
    app[_SERVICE] = service
    app[_METRICS] = service.metrics
    app[_TOKEN] = token.get_secret_value().encode("utf-8")
    app[_MAX_BODY_BYTES] = max_body_bytes
    app.router.add_post(ALERTS_PATH, post_alerts)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_endpoint)
    return app


def tls_context(settings: BridgeSettings) -> ssl.SSLContext | None:
    """HTTPS with the settings' certificate and key (OSError if they cannot be read); None
    for plain HTTP."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


class Bridge:
    """The bridge as one object: service, metrics and HTTP server; start and stop it on any
    running event loop (its own, or kopf's)."""

    def __init__(self, kube: KubeClient, settings: BridgeSettings) -> None:
        token = settings.bearer_token()  # ConfigError without one
        self.metrics = BridgeMetrics()
        self.service = BridgeService(
            kube,
            settings.rules,
            concurrency=settings.concurrency,
            metrics=self.metrics,
            limits=settings.limits,
        )
        self.app = create_app(self.service, token, settings.max_body_bytes)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @classmethod
    def from_settings(cls, settings: BridgeSettings, kubeconfig: str | None = None) -> Bridge:
        """The bridge the settings describe, on a client pooled for its concurrency. Without
        a token, ConfigError before any cluster configuration is read."""
        settings.bearer_token()
        kube = KubeClient.from_environment_pooled(kubeconfig, pool_size=settings.concurrency)
        return cls(kube, settings)

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> int:
        """Listen; returns the port (useful with port 0)."""
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        address: Any = runner.addresses[0]
        self.port = int(address[1])
        log.info(
            "bridge: listening on %s:%s (%s)", host, self.port, "https" if ssl_context else "http"
        )
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await asyncio.get_running_loop().run_in_executor(None, self.service.close)


async def serve_until_signalled(
    bridge: Bridge, host: str, port: int, ssl_context: ssl.SSLContext | None
) -> None:
    """`mitigator bridge`: serve until SIGTERM or SIGINT, then stop gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    await bridge.start(host, port, ssl_context)
    try:
        await stop.wait()
    finally:
        await bridge.stop()
