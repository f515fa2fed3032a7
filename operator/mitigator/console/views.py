"""What `mitigator incidents` and `mitigator describe` show, built from an Incident as the
API server returns it (pure: no I/O, unit-tested on plain dicts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mitigator.console.output import Style, age, short_duration
from mitigator.models import JsonObject
from mitigator.models.common import parse_timestamp


def when(value: Any) -> datetime | None:
    return parse_timestamp(value) if value else None


def time_to_mitigate(incident: JsonObject) -> float | None:
    """Seconds from detection to the first mitigation that held (status.mitigatedAt)."""
    status = incident.get("status") or {}
    detected, mitigated = when(status.get("detectedAt")), when(status.get("mitigatedAt"))
    if detected is None or mitigated is None:
        return None
    return (mitigated - detected).total_seconds()


LIST_HEADER = ("NAME", "AGE", "SEVERITY", "PHASE", "TARGET", "TIME TO MITIGATE")


def list_row(incident: JsonObject, *, now: datetime, with_namespace: bool) -> list[str]:
    meta, status = incident["metadata"], incident.get("status") or {}
    ttm = time_to_mitigate(incident)
    row = [
        meta["name"],
        age(when(meta.get("creationTimestamp")), now),
        str(status.get("severity") or "-"),
        str(status.get("phase") or "-"),
        str(((incident.get("spec") or {}).get("target") or {}).get("name") or "-"),
        "-" if ttm is None else short_duration(ttm),
    ]
    return [meta["namespace"], *row] if with_namespace else row


def list_entry(incident: JsonObject) -> JsonObject:
    """One incident as `incidents -o json` prints it: the columns, machine-readable."""
    meta, status = incident["metadata"], incident.get("status") or {}
    return {
        "namespace": meta["namespace"],
        "name": meta["name"],
        "createdAt": meta.get("creationTimestamp"),
        "severity": status.get("severity"),
        "phase": status.get("phase"),
        "target": ((incident.get("spec") or {}).get("target") or {}).get("name"),
        "timeToMitigateSeconds": time_to_mitigate(incident),
    }


def _pairs(mapping: JsonObject | None) -> str:
    if not mapping:
        return "-"
    return ", ".join(f"{k}={v}" for k, v in mapping.items())


def describe(incident: JsonObject, *, style: Style) -> str:
    """Every part of the record a responder reads: classification with its numbers, each
    action with before/after, the verification checks, escalation and the timeline."""
    meta, spec, status = incident["metadata"], incident["spec"], incident.get("status") or {}
    target = spec["target"]
    head = style.bold
    lines = [
        f"{head('Name:')}       {meta['namespace']}/{meta['name']}",
        f"{head('Title:')}      {spec.get('title') or '-'}",
        f"{head('Target:')}     {target.get('kind', 'Deployment')}/{target['name']}",
        f"{head('Source:')}     {(spec.get('source') or {}).get('type', 'manual')}",
        f"{head('Phase:')}      {style.tone(str(status.get('phase') or '-'))}",
        f"{head('Severity:')}   {style.tone(str(status.get('severity') or '-'))}",
        f"{head('Policy:')}     {status.get('policy') or '-'} (rule {status.get('rule') or '-'})",
        f"{head('Detected:')}   {status.get('detectedAt') or '-'}",
        f"{head('Mitigated:')}  {status.get('mitigatedAt') or '-'}",
        f"{head('Resolved:')}   {status.get('resolvedAt') or '-'}",
    ]
    if spec.get("dryRun"):
        lines.append(f"{head('Dry run:')}    yes (nothing is changed)")
    if spec.get("approved"):
        lines.append(
            f"{head('Approved:')}   by {spec.get('approvedBy') or '(not recorded)'}"
            f" at {spec.get('approvedAt') or '-'}"
        )
    if spec.get("resolve"):
        lines.append(
            f"{head('Resolve:')}    asked by {spec.get('resolvedBy') or '(not recorded)'}"
            f" at {spec.get('resolvedAt') or '-'}"
        )
    if status.get("message"):
        lines.append(f"{head('Message:')}    {status['message']}")
    classification = status.get("classification")
    if classification:
        lines += ["", head("Classification:")]
        lines.append(
            f"  severity {style.tone(str(classification.get('severity')))}"
            f" at {classification.get('at') or '-'}"
        )
        lines.append(f"  observed: {_pairs(classification.get('observed'))}")
        lines += [f"  - {reason}" for reason in classification.get("reasons") or []]
    actions = status.get("actions") or []
    if actions:
        lines += ["", head("Actions:")]
        for action in actions:
            lines.append(
                f"  {action['id']}  {action['type']}  {style.tone(str(action.get('state')))}"
                f"  {action.get('startedAt') or '-'} → {action.get('finishedAt') or '-'}"
            )
            if action.get("message"):
                lines.append(f"      {action['message']}")
            if action.get("before") is not None or action.get("after") is not None:
                lines.append(f"      before: {_pairs(action.get('before'))}")
                lines.append(f"      after:  {_pairs(action.get('after'))}")
            if action.get("evidence"):
                lines.append(f"      evidence kept in ConfigMap {action['evidence']}")
    verification = status.get("verification")
    if verification:
        verdict = "passed" if verification.get("passed") else "not passed"
        # `at` is when these checks were recorded: the operator writes them when a verdict
        # changes, evidence goes missing or comes back, and otherwise every 30 s or so.
        lines += [
            "",
            head("Verification:") + f" {verdict}, checks as of {verification.get('at') or '-'}",
        ]
        if verification.get("windowStartedAt"):
            since = verification.get("passingSince")
            lines.append(
                f"  window opened {verification['windowStartedAt']}; "
                + (f"every check passing since {since}" if since else "not every check passing")
            )
        for check in verification.get("checks") or []:
            mark = "ok  " if check.get("passed") else "FAIL"
            lines.append(
                f"  {mark} {check.get('name')}: {check.get('observed') or '-'}"
                f" (threshold {check.get('threshold') or '-'})"
            )
    escalation = status.get("escalation") or {}
    if escalation.get("levels"):
        lines += ["", head("Escalation:")]
        for level in escalation["levels"]:
            delivered = {True: "delivered", False: "not delivered"}.get(level.get("delivered"), "")
            lines.append(
                f"  level {level.get('level')} {level.get('name') or ''}"
                f" notified {level.get('notifiedAt') or '-'} {delivered}".rstrip()
            )
    timeline = status.get("timeline") or []
    if timeline:
        lines += ["", head("Timeline (UTC):")]
        lines += [f"  {e.get('at')}  {e.get('event'):<18} {e.get('message', '')}" for e in timeline]
    return "\n".join(lines) + "\n"
