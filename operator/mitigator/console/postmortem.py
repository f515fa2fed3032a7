"""`mitigator postmortem INCIDENT [-o FILE]`: the post-mortem draft of one incident, with the
impact measured by Prometheus over the incident window and a chart (PNG and SVG beside FILE)."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from string import Template

from mitigator.console.chart import Marker, render
from mitigator.console.report import Impact, render_markdown
from mitigator.console.session import CommandError, now, open_session
from mitigator.console.views import when
from mitigator.k8s import KubeClient, NotFound
from mitigator.metrics.history import PrometheusError, Series, query_range, value_at
from mitigator.models import JsonObject
from mitigator.models.policy import MetricKind, MetricQueries

MAX_POINTS = 300


def _peak(series: Series) -> tuple[float | None, datetime | None]:
    if not series:
        return None, None
    at, value = max(series, key=lambda sample: sample[1])
    return value, at


def _queries(kube: KubeClient, namespace: str, policy: str | None) -> MetricQueries:
    if not policy:
        return MetricQueries()
    try:
        spec = kube.read_policy(namespace, policy).get("spec") or {}
    except NotFound:
        return MetricQueries()  # the policy is gone: its defaults are the guide's queries
    return MetricQueries.model_validate(spec.get("metrics") or {})


def measure(
    incident: JsonObject, queries: MetricQueries, url: str, args: argparse.Namespace
) -> tuple[Impact, Series, Series]:
    """The impact over the incident window, and the two series the chart draws."""
    status, meta = incident.get("status") or {}, incident["metadata"]
    start = when(status.get("detectedAt")) or when(meta.get("creationTimestamp")) or now()
    end = when(status.get("resolvedAt")) or now()
    if end <= start:
        end = start + timedelta(seconds=1)
    seconds = (end - start).total_seconds()
    step = max(1.0, seconds / MAX_POINTS)
    target = {"namespace": meta["namespace"], "name": incident["spec"]["target"]["name"]}

    def rendered(kind: MetricKind) -> str:
        return queries.render(kind, **target)

    def counted(template: str) -> float | None:
        promql = Template(template).safe_substitute(**target, range=f"{max(1, round(seconds))}s")
        return value_at(url, promql, at=end)

    errors = query_range(
        url, rendered(MetricKind.ERROR_RATE), start=start, end=end, step_seconds=step
    )
    p95 = query_range(
        url, rendered(MetricKind.P95_LATENCY), start=start, end=end, step_seconds=step
    )
    error_peak, error_at = _peak(errors)
    p95_peak, p95_at = _peak(p95)
    impact = Impact(
        start=start,
        end=end,
        requests_failed=counted(args.failed_query),
        requests_total=counted(args.requests_query),
        error_rate_peak=error_peak,
        error_rate_peak_at=error_at,
        p95_peak=p95_peak,
        p95_peak_at=p95_at,
        source=url,
    )
    return impact, errors, p95


def markers(incident: JsonObject) -> list[Marker]:
    """Each action at the time the status recorded it applied (finishedAt, else startedAt),
    and the incident's detection and resolution."""
    status = incident.get("status") or {}
    found = []
    for action in status.get("actions") or []:
        at = when(action.get("finishedAt") or action.get("startedAt"))
        if at is not None:
            found.append(Marker(action["id"], at, "action"))
    for key, kind in (("detectedAt", "detected"), ("resolvedAt", "resolved")):
        if at := when(status.get(key)):
            found.append(Marker(kind.capitalize(), at, kind))
    return found


def postmortem(args: argparse.Namespace) -> int:
    connection, namespace = open_session(args)
    kube = connection.kube
    incident = kube.read_incident(namespace, args.incident)
    status = incident.get("status") or {}
    queries = _queries(kube, namespace, status.get("policy"))
    url = (
        args.prometheus_url or queries.prometheus_url or os.environ.get("MITIGATOR_PROMETHEUS_URL")
    )
    if not url:
        raise CommandError(
            "no Prometheus to measure the impact: give --prometheus-url (or set "
            "MITIGATOR_PROMETHEUS_URL, or metrics.prometheusURL in the policy)"
        )
    try:
        impact, errors, p95 = measure(incident, queries, url, args)
    except PrometheusError as exc:
        raise CommandError(str(exc)) from exc
    png = svg = None
    if args.output:
        document = Path(args.output)
        png_path, svg_path = document.with_suffix(".png"), document.with_suffix(".svg")
        render(
            error_rate=errors,
            p95=p95,
            markers=markers(incident),
            start=impact.start,
            end=impact.end,
            title=f"{namespace}/{args.incident}: error rate and p95, actions marked",
            png=png_path,
            svg=svg_path,
        )
        png, svg = png_path.name, svg_path.name
    text = render_markdown(incident, impact, png=png, svg=svg, now=now())
    if args.output:
        Path(args.output).write_text(text)
        print(f"post-mortem written to {args.output} (chart: {png}, {svg})")
    else:
        sys.stdout.write(text)
    return 0
