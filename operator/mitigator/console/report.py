"""The post-mortem as Markdown, following the guide's template (Phase 6): what the record
holds is filled in — date, severity, duration, impact measured by Prometheus, the timeline in
UTC, each step with how it was verified, who approved and who resolved — and the parts only
people can write are left as clearly marked prompts. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mitigator.console.views import when
from mitigator.domain.formatting import format_ratio_as_percent, format_seconds
from mitigator.models import JsonObject, format_timestamp

PROMPT = "> _TO WRITE (people):_"


@dataclass(frozen=True)
class Impact:
    start: datetime
    end: datetime
    requests_failed: float | None
    requests_total: float | None
    error_rate_peak: float | None
    error_rate_peak_at: datetime | None
    p95_peak: float | None
    p95_peak_at: datetime | None
    source: str  # the Prometheus asked


def _count(value: float | None) -> str:
    return "no data" if value is None else f"{round(value):,}"


def _peak(value: float | None, at: datetime | None, *, percent: bool) -> str:
    if value is None or at is None:
        return "no data"
    shown = format_ratio_as_percent(value) if percent else format_seconds(value)
    return f"{shown} at {format_timestamp(at)}"


def duration_text(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} hours {minutes} minutes"
    return f"{minutes} minutes {secs} seconds" if minutes else f"{secs} seconds"


def render_markdown(
    incident: JsonObject, impact: Impact, *, png: str | None, svg: str | None, now: datetime
) -> str:
    meta, spec, status = incident["metadata"], incident["spec"], incident.get("status") or {}
    title = spec.get("title") or f"{meta['name']} on Deployment {spec['target']['name']}"
    detected = when(status.get("detectedAt")) or impact.start
    resolved = when(status.get("resolvedAt"))
    duration = (resolved or now) - detected
    ongoing = "" if resolved else " (not resolved yet)"
    share = ""
    if impact.requests_failed is not None and impact.requests_total:
        share = f" ({format_ratio_as_percent(impact.requests_failed / impact.requests_total)}"
        share += f" of {_count(impact.requests_total)} requests)"
    out = [
        f"# Post-Mortem: {title}",
        "",
        f"**Incident**: {meta['namespace']}/{meta['name']}  ",
        f"**Date**: {detected.date().isoformat()}  ",
        f"**Severity**: {status.get('severity') or 'unknown'}  ",
        f"**Duration**: {duration_text(duration.total_seconds())}{ongoing}  ",
        f"**Impact**: {_count(impact.requests_failed)} requests failed{share}",
        "",
        "## Summary",
        f"{PROMPT} what happened, in two sentences.",
        "",
        f"The operator classified it {status.get('classification', {}).get('severity', '-')}"
        f" and ended in phase {status.get('phase') or '-'}: {status.get('message') or ''}",
        "",
        "## Impact",
        f"Measured by Prometheus ({impact.source}) over the incident window "
        f"{format_timestamp(impact.start)} – {format_timestamp(impact.end)}:",
        "",
        f"- **Requests failed**: {_count(impact.requests_failed)}{share}",
        f"- **Error-rate peak**: {_peak(impact.error_rate_peak, impact.error_rate_peak_at, percent=True)}",  # noqa: E501
        f"- **p95 latency peak**: {_peak(impact.p95_peak, impact.p95_peak_at, percent=False)}",
        f"- **Duration**: {duration_text(duration.total_seconds())}",
        f"- **Users affected**: {PROMPT}",
        "",
    ]
    if png or svg:
        out += [
            f"![error rate and p95 over the incident, each action marked]({png or svg})",
            "",
            f"Chart: [PNG]({png}) · [SVG]({svg})" if png and svg else "",
            "",
        ]
    out += ["## Timeline (UTC)"]
    out += [
        f"- {entry.get('at')} - {entry.get('event')}: {entry.get('message', '')}"
        for entry in status.get("timeline") or []
    ]
    out += ["", "## What the operator did", ""]
    for action in status.get("actions") or []:
        at = action.get("finishedAt") or action.get("startedAt") or "-"
        out.append(
            f"- **{action['id']}** ({action['type']}, {action.get('state')}) at {at}: "
            f"{action.get('message') or ''}"
        )
        if action.get("evidence"):
            out.append(f"  - evidence kept before it: ConfigMap `{action['evidence']}`")
    if not status.get("actions"):
        out.append("- nothing was applied")
    verification = status.get("verification") or {}
    out += ["", "### How it was verified", ""]
    for check in verification.get("checks") or []:
        mark = "passed" if check.get("passed") else "failed"
        out.append(
            f"- {check.get('name')}: {check.get('observed') or '-'} "
            f"(threshold {check.get('threshold') or '-'}) — {mark}"
        )
    if verification:
        verdict = "passed" if verification.get("passed") else "did not pass"
        out.append(f"- checklist {verdict} at {verification.get('at') or '-'}")
    else:
        out.append("- never verified")
    out += [
        "",
        "## People",
        f"- **Approved by**: {spec.get('approvedBy') or '-'} at {spec.get('approvedAt') or '-'}",
        f"- **Resolved by**: {spec.get('resolvedBy') or ('the operator (verified recovery)' if resolved else '-')}"  # noqa: E501
        f" at {spec.get('resolvedAt') or status.get('resolvedAt') or '-'}",
        "",
        "## Root Cause",
        f"{PROMPT} why it happened (deep dive).",
        "",
        "## What Went Well",
        f"{PROMPT}",
        "",
        "## What Went Wrong",
        f"{PROMPT}",
        "",
        "## Lessons Learned",
        f"{PROMPT}",
        "",
        "## Action Items",
        f"- [ ] {PROMPT} (Owner: @..., Due: YYYY-MM-DD)",
        "",
    ]
    return "\n".join(out)
