"""A stand-in for the service's metrics in integration tests: a thread that watches one
Deployment through the real API and sets the signals Prometheus scrapes from what is deployed
(the full simulated service of the e2e tier does the same with request counters)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from kubernetes import client

Health = tuple[float, float]  # (error ratio, p95 seconds)


class Responder:
    def __init__(
        self,
        api_client: client.ApiClient,
        signals: Any,
        *,
        namespace: str,
        name: str,
        health: Callable[[dict[str, Any]], Health],
    ) -> None:
        self.apps = client.AppsV1Api(api_client)
        self.signals, self.namespace, self.name, self.health = signals, namespace, name, health
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Responder:
        self._update()
        self.signals.wait_scraped(self.namespace, self.name)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _update(self) -> None:
        deployment = self.apps.read_namespaced_deployment(self.name, self.namespace)
        dep = self.apps.api_client.sanitize_for_serialization(deployment)
        error_ratio, p95 = self.health(dep)
        self.signals.set(self.namespace, self.name, error_ratio=error_ratio, p95_seconds=p95)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self._update()
            except Exception:
                continue


def container_env(deployment: dict[str, Any]) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container.get("env") or []}


def image(deployment: dict[str, Any]) -> str:
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])
