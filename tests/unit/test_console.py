"""The incident commands' pure parts: list rows and the describe text from an Incident as the
API server returns it, plain when piped and coloured on a terminal; the post-mortem's Markdown;
the drill's plan; and the kubectl plugin entry point."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mitigator.console.drill import drill_incident, plan_text
from mitigator.console.output import Style, age, table
from mitigator.console.report import PROMPT, Impact, render_markdown
from mitigator.console.views import describe, list_entry, list_row, time_to_mitigate

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _incident(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "errors",
            "namespace": "luminamind",
            "creationTimestamp": "2026-03-01T11:50:00Z",
        },
        "spec": {
            "target": {"kind": "Deployment", "name": "luminamind"},
            "title": "5xx after the 1.5.0 deploy",
            "approved": True,
            "approvedBy": "alice@example.com",
            "approvedAt": "2026-03-01T11:51:00Z",
        },
        "status": {
            "phase": "Resolved",
            "severity": "P1",
            "detectedAt": "2026-03-01T11:50:00Z",
            "mitigatedAt": "2026-03-01T11:50:42Z",
            "resolvedAt": "2026-03-01T11:53:10Z",
            "classification": {
                "severity": "P1",
                "reasons": ["error rate 30% > 5%"],
                "observed": {"errorRate": 0.3},
                "at": "2026-03-01T11:50:01Z",
            },
            "actions": [
                {
                    "id": "0-rollback",
                    "type": "rollback",
                    "state": "Applied",
                    "startedAt": "2026-03-01T11:50:40Z",
                    "finishedAt": "2026-03-01T11:50:42Z",
                    "message": "rolled back luminamind from revision 2 to 1",
                    "before": {"revision": 2},
                    "after": {"rolledBackToRevision": 1},
                    "evidence": "errors-evidence-0-rollback",
                }
            ],
            "verification": {
                "passed": True,
                "at": "2026-03-01T11:53:10Z",
                "checks": [
                    {"name": "errorRate", "passed": True, "observed": "0%", "threshold": "<0.5%"}
                ],
            },
            "timeline": [
                {"at": "2026-03-01T11:50:00Z", "event": "Detected", "message": "incident"},
                {"at": "2026-03-01T11:53:10Z", "event": "Resolved", "message": "verified"},
            ],
            **status,
        },
    }


def test_a_row_has_age_severity_phase_target_and_time_to_mitigate() -> None:
    incident = _incident()
    assert time_to_mitigate(incident) == 42.0
    assert list_row(incident, now=NOW, with_namespace=False) == [
        "errors", "10m", "P1", "Resolved", "luminamind", "42s",
    ]  # fmt: skip
    assert list_row(incident, now=NOW, with_namespace=True)[0] == "luminamind"
    entry = list_entry(_incident(mitigatedAt=None))
    assert entry["timeToMitigateSeconds"] is None and entry["phase"] == "Resolved"


def test_ages_read_like_kubectls() -> None:
    assert [age(datetime.fromtimestamp(NOW.timestamp() - s, UTC), NOW) for s in (5, 600, 7300)] == [
        "5s", "10m", "2h",
    ]  # fmt: skip
    assert age(None, NOW) == "-"


def test_plain_when_piped_coloured_on_a_terminal() -> None:
    rows = [["errors", "P1", "Resolved"]]
    plain = table(rows, style=Style(colour=False), header=("NAME", "SEVERITY", "PHASE"))
    assert "\033[" not in plain
    assert plain.splitlines()[1].split() == ["errors", "P1", "Resolved"]
    coloured = table(rows, style=Style(colour=True), header=("NAME", "SEVERITY", "PHASE"))
    assert "\033[31mP1\033[0m" in coloured and "\033[32mResolved\033[0m" in coloured


def test_describe_shows_the_whole_record() -> None:
    text = describe(_incident(), style=Style(colour=False))
    for expected in (
        "Approved:   by alice@example.com at 2026-03-01T11:51:00Z",
        "error rate 30% > 5%",
        "observed: errorRate=0.3",
        "0-rollback  rollback  Applied",
        "before: revision=2",
        "after:  rolledBackToRevision=1",
        "evidence kept in ConfigMap errors-evidence-0-rollback",
        "ok   errorRate: 0% (threshold <0.5%)",
        "2026-03-01T11:53:10Z  Resolved",
    ):
        assert expected in text, expected


def test_describe_says_when_the_checks_were_recorded_and_how_the_window_stands() -> None:
    window = {
        "passed": True,
        "at": "2026-03-01T11:52:30Z",
        "windowStartedAt": "2026-03-01T11:51:00Z",
        "passingSince": "2026-03-01T11:51:20Z",
        "checks": [{"name": "errorRate", "passed": True, "observed": "0%", "threshold": "<0.5%"}],
    }
    text = describe(_incident(phase="Verifying", verification=window), style=Style(colour=False))
    assert "Verification: passed, checks as of 2026-03-01T11:52:30Z" in text
    assert "window opened 2026-03-01T11:51:00Z; every check passing since 2026-03-01T11:51:20Z" in (
        text
    )
    failing = {**window, "passed": False, "passingSince": None}
    text = describe(_incident(phase="Verifying", verification=failing), style=Style(colour=False))
    assert "window opened 2026-03-01T11:51:00Z; not every check passing" in text


def test_the_postmortem_fills_in_the_record_and_leaves_people_prompts() -> None:
    start, end = (
        datetime(2026, 3, 1, 11, 50, tzinfo=UTC),
        datetime(2026, 3, 1, 11, 53, 10, tzinfo=UTC),
    )
    impact = Impact(
        start=start,
        end=end,
        requests_failed=1234.4,
        requests_total=5000.0,
        error_rate_peak=0.31,
        error_rate_peak_at=start,
        p95_peak=2.5,
        p95_peak_at=end,
        source="http://prometheus:9090",
    )
    text = render_markdown(_incident(), impact, png="pm.png", svg="pm.svg", now=NOW)
    assert text.startswith("# Post-Mortem: 5xx after the 1.5.0 deploy")
    for expected in (
        "**Date**: 2026-03-01",
        "**Severity**: P1",
        "**Duration**: 3 minutes 10 seconds",
        "**Requests failed**: 1,234 (24.7% of 5,000 requests)",
        "**Error-rate peak**: 31% at 2026-03-01T11:50:00Z",
        "**p95 latency peak**: 2.5s at 2026-03-01T11:53:10Z",
        "- 2026-03-01T11:50:00Z - Detected: incident",
        "ConfigMap `errors-evidence-0-rollback`",
        "**Approved by**: alice@example.com",
        "](pm.png)",
        "[SVG](pm.svg)",
    ):
        assert expected in text, expected
    for section in ("## Root Cause", "## What Went Well", "## Lessons Learned", "## Action Items"):
        after = text.split(section, 1)[1].lstrip()
        assert PROMPT in after.split("##", 1)[0], section


def test_a_drill_is_a_dry_run_under_the_policy_and_its_plan_says_why() -> None:
    body = drill_incident("runbooks", "web")
    assert body["spec"]["dryRun"] is True and body["spec"]["source"] == {"type": "drill"}
    assert body["spec"]["policyRef"] == {"name": "runbooks"}
    incident = _incident(rule="bad-deploy", phase="Escalated")
    incident["status"]["actions"][0]["params"] = {"toRevision": 1}
    policy = {
        "metadata": {"name": "runbooks"},
        "spec": {"escalation": [{"after": "15m", "level": 1, "name": "on-call"}]},
    }
    text = plan_text(incident, policy, style=Style(colour=False))
    assert "Rule: bad-deploy" in text
    assert "1. 0-rollback: rollback(toRevision=1)" in text
    assert "Escalation: level 1 on-call after 15m" in text


def test_kubectl_finds_the_plugin_by_its_console_script() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kubectl-mitigator"] == scripts["mitigator"] == "mitigator.cli:main"
