"""Builders and waits for Incidents and MitigationPolicies in integration tests."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from localkube.processes import wait_until

GROUP, VERSION = "mitigator.luminamind.io", "v1alpha1"
SIGNAL_QUERIES = {
    "errorRate": 'max(mt_error_ratio{namespace="$namespace",deployment="$name"})',
    "p95Latency": 'max(mt_p95_seconds{namespace="$namespace",deployment="$name"})',
}


def policy_manifest(
    name: str,
    *,
    app: str,
    rules: list[dict[str, Any]],
    prometheus_url: str | None = None,
    guardrails: dict[str, Any] | None = None,
    revert_on_resolve: list[str] | None = None,
    escalation: list[dict[str, Any]] | None = None,
    window: str = "2s",
    timeout: str = "20s",
) -> dict[str, Any]:
    metrics: dict[str, Any] = dict(SIGNAL_QUERIES)
    if prometheus_url:
        metrics["prometheusURL"] = prometheus_url
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": app}},
        "metrics": metrics,
        "rules": rules,
        "verification": {"window": window, "timeout": timeout},
        "guardrails": {"cooldown": "10m", **(guardrails or {})},
    }
    if revert_on_resolve:
        spec["revertOnResolve"] = revert_on_resolve
    if escalation:
        spec["escalation"] = escalation
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MitigationPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def incident_manifest(name: str, *, target: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Incident",
        "metadata": {"name": name},
        "spec": {"target": {"kind": "Deployment", "name": target}, **spec},
    }


class Resources:
    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api_client)
        self.namespace = namespace

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        plural = "incidents" if manifest["kind"] == "Incident" else "mitigationpolicies"
        result: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, manifest
        )
        return result

    def incident(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "incidents", name
        )
        return result

    def policy(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "mitigationpolicies", name
        )
        return result

    def patch_incident(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "incidents", name, {"spec": spec}
        )

    def wait_phase(self, name: str, *phases: str, timeout: float = 60) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        def reached() -> bool:
            seen.update(self.incident(name))
            return (seen.get("status") or {}).get("phase") in phases

        try:
            wait_until(reached, timeout=timeout, what=f"incident {name} to reach {phases}")
        except TimeoutError as exc:
            status = seen.get("status") or {}
            timeline = "\n".join(
                f"  {e.get('at')} {e.get('event')}: {e.get('message')}"
                for e in status.get("timeline") or []
            )
            raise AssertionError(
                f"{exc}; phase={status.get('phase')} message={status.get('message')}\n{timeline}"
            ) from exc
        return seen


def timeline_events(incident: dict[str, Any]) -> list[str]:
    return [entry["event"] for entry in incident["status"].get("timeline") or []]
