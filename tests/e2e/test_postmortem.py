"""After a real closed loop (the simulated service, the session's Prometheus, the operator):
the bad deploy is rolled back, and before the rollback replaced the pods their log lines (as
kwok served them) and Events were kept in a ConfigMap the Incident owns; the post-mortem's
timeline and impact agree with the status and with Prometheus, and its chart marks each
action at the recorded time."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest

from localkube.demo import BAD_IMAGE, SERVICE
from localkube.processes import wait_until
from localkube.testing import ClusterAccess
from mitigator.console.commands import FAILED_QUERY
from mitigator.domain.formatting import format_ratio_as_percent
from mitigator.models import parse_timestamp
from tests.support.cli import run_cli
from tests.support.objects import incident_manifest, timeline_events
from tests.support.service import Service

pytestmark = [pytest.mark.prometheus, pytest.mark.cluster]
TERMINAL = ("Resolved", "Escalated", "Failed")
SVG = "{http://www.w3.org/2000/svg}"


def _pods(service: Service) -> list[str]:
    return sorted(
        pod.metadata.name
        for pod in service.core().list_namespaced_pod(service.namespace).items
        if pod.metadata.labels.get("app") == SERVICE and not pod.metadata.deletion_timestamp
    )


def _kubectl_logs(cluster: ClusterAccess, namespace: str, pod: str) -> str:
    done = subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            str(cluster.kubeconfig),
            "logs",
            "-n",
            namespace,
            pod,
            "--tail=100",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _xs(path: ET.Element) -> list[float]:
    """The x coordinates of an SVG path's points ("M x y L x y ...")."""
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", path.attrib["d"])]
    return numbers[0::2]


def _group(svg: ET.Element, gid: str) -> ET.Element:
    [group] = [g for g in svg.iter(f"{SVG}g") if g.attrib.get("id") == gid]
    path = group.find(f".//{SVG}path")
    assert path is not None, gid
    return path


def test_a_rollback_keeps_evidence_and_the_postmortem_matches_the_record(
    luminamind: Service, cluster: ClusterAccess, tmp_path: Path
) -> None:
    if cluster.local is None:
        pytest.skip("pod logs come from kwok on the local control plane")
    cluster.local.log_to_pods(
        f"{luminamind.namespace}: request 41 served", f"{luminamind.namespace}: upstream 502"
    )
    luminamind.ship(BAD_IMAGE)
    wait_until(
        lambda: (luminamind.error_rate() or 0.0) > 0.05, timeout=60, what="the bad version's errors"
    )
    replaced = _pods(luminamind)
    served = {pod: _kubectl_logs(cluster, luminamind.namespace, pod) for pod in replaced}
    assert all(f"{luminamind.namespace}: upstream 502" in text for text in served.values())

    luminamind.resources.create(incident_manifest("errors", target=SERVICE))
    incident = luminamind.resources.wait_phase("errors", *TERMINAL, timeout=120)
    status = incident["status"]
    assert status["phase"] == "Resolved", (status.get("message"), timeline_events(incident))
    [rollback] = [a for a in status["actions"] if a["type"] == "rollback"]
    assert rollback["state"] == "Applied"

    # Evidence: the replaced pods' logs exactly as kwok served them, their Events, the spec.
    evidence = luminamind.core().read_namespaced_config_map(
        rollback["evidence"], luminamind.namespace
    )
    [owner] = evidence.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid) == (
        "Incident",
        "errors",
        incident["metadata"]["uid"],
    )
    for pod, text in served.items():
        assert evidence.data[f"{pod}.app.log"] == text
        assert f"Pod/{pod} Scheduled" in evidence.data["events.txt"]
    assert BAD_IMAGE in evidence.data["spec.json"]
    assert "EvidenceKept" in timeline_events(incident)
    assert sum(len(v.encode()) for v in evidence.data.values()) < 1024 * 1024

    detected, resolved = (
        parse_timestamp(status["detectedAt"]),
        parse_timestamp(status["resolvedAt"]),
    )
    # Until Prometheus holds every sample up to the resolution: a scrape still on its way
    # (late on a loaded machine) would change the figures between the post-mortem's queries
    # and this test's own of the same window. The service is one scrape target, scraped in
    # turn: once a sample newer than the resolution is in, every older one is.
    newest = 'max(timestamp(luminamind_requests_total{namespace="$namespace"}))'
    wait_until(
        lambda: (luminamind.value(newest) or 0.0) > resolved.timestamp(),
        timeout=30,
        what="Prometheus to hold the samples up to the resolution",
    )

    # The post-mortem, as a person makes it.
    document = tmp_path / "errors.md"
    done = run_cli(
        "postmortem",
        "errors",
        "-n",
        luminamind.namespace,
        "-o",
        str(document),
        "--prometheus-url",
        luminamind.prometheus.url,
        kubeconfig=cluster.kubeconfig,
    )
    assert done.code == 0, done.err
    text = document.read_text()
    for entry in status["timeline"]:
        assert f"- {entry['at']} - {entry['event']}: {entry['message']}" in text
    assert f"**Severity**: {status['severity']}" in text
    assert f"**Date**: {detected.date().isoformat()}" in text
    assert f"ConfigMap `{rollback['evidence']}`" in text

    # Impact: what Prometheus answers for the same window.
    match = re.search(r"\*\*Error-rate peak\*\*: (\S+) at (\S+)", text)
    assert match, text
    peak_at = parse_timestamp(match.group(2))
    # Within the window as the post-mortem asked Prometheus for it: its ends go out in whole
    # milliseconds (`history.query_range`), so a peak at its first step may be a fraction of
    # a millisecond before `detectedAt` itself (seen: 206000 < 206471 us), or after
    # `resolvedAt` at its last.
    assert _as_sent(detected) <= peak_at <= _as_sent(resolved)
    error_query = (
        f'(sum(rate(luminamind_requests_total{{namespace="{luminamind.namespace}",'
        f'deployment="{SERVICE}",status=~"5.."}}[15s])) or vector(0)) / '
        f'sum(rate(luminamind_requests_total{{namespace="{luminamind.namespace}",'
        f'deployment="{SERVICE}"}}[15s]))'
    )
    at_peak = measured_at(luminamind, error_query, peak_at)
    assert match.group(1) == format_ratio_as_percent(at_peak)
    classified = status["classification"]["observed"]["errorRate"]["value"]
    assert at_peak >= classified * 0.9  # the peak is no lower than what triage measured
    failed = re.search(r"\*\*Requests failed\*\*: ([\d,]+)", text)
    assert failed, text
    window = f"{max(1, round((resolved - detected).total_seconds()))}s"
    expected = measured_at(
        luminamind,
        FAILED_QUERY.replace("$namespace", luminamind.namespace)
        .replace("$name", SERVICE)
        .replace("$range", window),
        resolved,
    )
    assert int(failed.group(1).replace(",", "")) == round(expected) > 0
    p95 = re.search(r"\*\*p95 latency peak\*\*: (\S+) at", text)
    assert p95 and p95.group(1).endswith("s"), text

    # The chart: a valid PNG and SVG, each action marked where its recorded time falls.
    png, svg = document.with_suffix(".png"), document.with_suffix(".svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    assert matplotlib.image.imread(str(png)).shape[:2] == (600, 1000)
    root = ET.parse(svg).getroot()
    area = _xs(_group(root, "plot-area-errors"))
    left, width = min(area), max(area) - min(area)
    span = (resolved - detected).total_seconds()
    ran = [a for a in status["actions"] if a.get("finishedAt") or a.get("startedAt")]
    assert rollback in ran
    for action in ran:  # steps never reached have no time and no marker
        at = parse_timestamp(action.get("finishedAt") or action["startedAt"])
        expected_x = left + (at - detected).total_seconds() / span * width
        [x, *_] = _xs(_group(root, f"action-{action['id']}-errors"))
        assert abs(x - expected_x) < 1.5, (action["id"], x, expected_x)


def measured_at(service: Service, promql: str, at: datetime) -> float:
    from mitigator.metrics.history import value_at

    value = value_at(service.prometheus.url, promql, at=at)
    assert value is not None, promql
    return value


def _as_sent(moment: datetime) -> datetime:
    """`moment` as `history.query_range` sends it to Prometheus: in whole milliseconds."""
    return datetime.fromtimestamp(float(f"{moment.timestamp():.3f}"), UTC)
