"""See what it does, keep its secrets: after a closed loop (bad deploy → rollback → Resolved,
with an escalation receiver whose URL is a Secret), the operator's log lines are JSON and
name every transition and action; the real Prometheus scrapes the operator's /metrics and the
counters and histograms match what happened; no log line, status or Event holds the
receiver's URL or the Prometheus bearer token. The operator runs as its own process with the
RBAC of config/overlays/cluster-wide, which reads no Secret, plus the team's grant of `get`
on the receiver's Secret by name (config/policy-secrets)."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from localkube.monitoring import Prometheus
from localkube.processes import free_port, wait_until
from localkube.testing import ClusterAccess
from tests.support.kube import BAD, GOOD, deploy_good_then_bad
from tests.support.objects import Resources, incident_manifest, policy_manifest
from tests.support.responder import Responder, image
from tests.support.secret_grants import grant_secrets
from tests.support.world import (
    assert_no_secret_in,
    dashboard_queries,
    json_log_lines,
    remember_secret,
    start_operator,
)

pytestmark = pytest.mark.cluster


def _secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def _value(prometheus: Prometheus, promql: str) -> float | None:
    result = prometheus.query(promql)
    return float(result[0]["value"][1]) if result else None


def test_closed_loop_is_logged_as_json_counted_in_metrics_and_keeps_its_secrets(
    *,
    operator_kubeconfig: Path,
    cluster: ClusterAccess,
    prometheus: Prometheus,
    signals: Any,
    api_client: client.ApiClient,
    own_namespace: str,
    tmp_path: Path,
    webhook_receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    namespace = own_namespace
    apps = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    resources = Resources(api_client, namespace)
    url, received = webhook_receiver
    # The receiver's URL carries a token, as Slack's do; it lives in a Secret only.
    hook_token = secrets.token_urlsafe(24)
    hook_url = f"{url}/services/T0/B0/{hook_token}"
    core.create_namespaced_secret(namespace, _secret("oncall-slack", {"url": hook_url}))
    # What the team adds: the operator may get that Secret, by name (neither overlay grants any).
    grant_secrets(cluster, api_client, namespace, ["oncall-slack"])
    bearer = secrets.token_urlsafe(24)
    token_file = tmp_path / "prometheus-token"
    token_file.write_text(bearer)
    remember_secret(hook_token, bearer)

    deploy_good_then_bad(apps, namespace)
    resources.create(
        policy_manifest(
            "runbooks",
            app="web",
            rules=[{"name": "any", "actions": [{"rollback": {}}]}],
            # Level 1 (due at detection) is told before the incident resolves.
            window="6s",
            escalation=[
                {
                    "after": "0s",
                    "level": 1,
                    "name": "on-call",
                    "receiver": {
                        "name": "oncall-slack",
                        "urlSecretRef": {"name": "oncall-slack", "key": "url"},
                    },
                }
            ],
        )
    )
    log = tmp_path / "operator.log"
    metrics_port = free_port()
    # The job name the PodMonitor (config/monitoring) gives, which the dashboard selects on.
    job = "mitigator"
    instance = f"127.0.0.1:{metrics_port}"
    sel = f'job="{job}",instance="{instance}"'

    def health(dep: dict[str, Any]) -> tuple[float, float]:
        return (0.3, 0.2) if image(dep) == BAD else (0.0, 0.2)

    with Responder(api_client, signals, namespace=namespace, name="web", health=health):
        operator = start_operator(
            operator_kubeconfig,
            prometheus,
            namespace,
            log,
            MITIGATOR_LOG_FORMAT="json",
            # DEBUG: kopf's own records (patches, watch events) are scanned for secrets too.
            MITIGATOR_LOG_LEVEL="DEBUG",
            MITIGATOR_METRICS_PORT=str(metrics_port),
            MITIGATOR_METRICS_HOST="127.0.0.1",
            MITIGATOR_PROMETHEUS_BEARER_TOKEN_FILE=str(token_file),
        )
        try:
            prometheus.add_targets(namespace, [instance], {"job": job})
            resources.create(incident_manifest("bad-deploy", target="web"))
            incident = resources.wait_phase("bad-deploy", "Resolved", "Escalated", "Failed")
            assert incident["status"]["phase"] == "Resolved", incident["status"].get("message")
            wait_until(
                lambda: [r["payload"]["status"] for r in received] == ["firing", "resolved"],
                timeout=30,
                what="the receiver to hear of the incident, then of its resolution",
            )

            def scraped(promql: str, expected: float) -> bool:
                return _value(prometheus, promql) == expected

            expectations = {
                f'mitigator_actions_total{{{sel},type="rollback",result="Applied"}}': 1,
                f"sum(mitigator_actions_total{{{sel}}})": 1,
                f'mitigator_incident_transitions_total{{{sel},phase="Resolved"}}': 1,
                f'mitigator_verifications_total{{{sel},result="passed"}}': 1,
                f"mitigator_time_to_first_action_seconds_count{{{sel}}}": 1,
                f"mitigator_time_to_resolution_seconds_count{{{sel}}}": 1,
                f'mitigator_escalation_deliveries_total{{{sel},kind="trigger",'
                'format="slack",result="delivered"}': 1,
                f'mitigator_escalation_deliveries_total{{{sel},kind="resolve",'
                'format="slack",result="delivered"}': 1,
                # Resolved and its resolved notice delivered: settled in that write, it left
                # the operator's watch, which is what the gauge counts (watch_selection.py).
                f"sum(mitigator_incidents{{{sel}}}) or on() vector(0)": 0,
                f"mitigator_leader{{{sel}}}": 1,
            }
            for promql, expected in expectations.items():
                wait_until(
                    lambda promql=promql, expected=expected: scraped(promql, expected),
                    timeout=30,
                    what=f"Prometheus to scrape {promql} == {expected}",
                )
            resolution = _value(prometheus, f"mitigator_time_to_resolution_seconds_sum{{{sel}}}")
            assert resolution is not None and 0 < resolution < 120
            assert (_value(prometheus, f"mitigator_tick_duration_seconds_count{{{sel}}}") or 0) > 0
            # The dashboard over this data: every query is accepted (the Prometheus client
            # raises on an error answer), and the panels about what just happened show it.
            answers = {name: prometheus.query(expr) for name, expr in dashboard_queries().items()}
            for panel in (
                "panel 'Actions by type and result' A",
                "panel 'Time to mitigate (detection to first action)' B",
                "panel 'Time to resolve (detection to Resolved)' B",
                "panel 'Leader' A",
                "panel 'Open incidents' A",
            ):
                assert answers[panel], f"{panel} shows nothing after the scenario"
        finally:
            prometheus.remove_targets(namespace)
            operator.terminate()
            operator.wait(timeout=30)

    lines = json_log_lines(log)
    ours = [line for line in lines if line.get("incident") == "bad-deploy"]
    phases = [line["phase"] for line in ours if line["event"] == "phase changed"]
    # One tick may go from detection to Verifying (the rollback is applied in it).
    assert phases[-2:] == ["Verifying", "Resolved"], phases
    [applied] = [line for line in ours if line["event"] == "action applied"]
    assert applied["action"] == "rollback" and applied["action_id"]
    assert applied["target"] == "web" and applied["namespace"] == namespace
    assert BAD in str(applied["before"]) and GOOD in str(applied["after"])
    assert any(line["event"] == "verification passed" for line in ours)
    notices = [line for line in ours if str(line["event"]).startswith("escalation")]
    assert {line["receiver"] for line in notices} == {"oncall-slack"}
    assert all(line["level"] in ("info", "debug", "warning", "error") for line in lines)

    # The secrets: nowhere in the log, the status, or the Events.
    incident = resources.incident("bad-deploy")
    [notice] = incident["status"]["escalation"]["levels"]
    assert notice["receiver"] == "oncall-slack" and notice["resolvedNotified"] is True
    events = core.list_namespaced_event(namespace).items
    event_text = json.dumps([api_client.sanitize_for_serialization(e) for e in events])
    status_file = tmp_path / "status-and-events.json"
    status_file.write_text(json.dumps(incident) + event_text)
    assert_no_secret_in([log, status_file], [hook_token, bearer])
    # Events report as mitigator, not kopf's default component.
    ours_events = [e for e in events if e.involved_object.name == "bad-deploy"]
    assert ours_events and {e.reporting_component for e in ours_events} == {"mitigator"}
    assert "forbidden" not in log.read_text().lower(), "the operator's RBAC lacks a permission"
