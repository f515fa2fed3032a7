"""The CRDs on the real API server: every example applies; every malformed resource is
refused with a message naming the field; kubectl shows the printer columns."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.testing import ClusterAccess
from tests.support.invalid_cases import INVALID_CASES, InvalidCase
from tests.support.objects import GROUP, VERSION

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").rglob("*.yaml"))


def _kubectl(cluster: ClusterAccess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", *args],
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_applies_cleanly(
    cluster: ClusterAccess, crds: None, namespace: str, example: Path
) -> None:
    result = _kubectl(cluster, "apply", "-n", namespace, "--validate=strict", "-f", str(example))
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr


@pytest.mark.parametrize("case", INVALID_CASES, ids=lambda c: c.description)
def test_malformed_resources_are_refused_naming_the_field(
    api_client: client.ApiClient, crds: None, namespace: str, case: InvalidCase
) -> None:
    custom = client.CustomObjectsApi(api_client)
    plural = "incidents" if case.kind == "Incident" else "mitigationpolicies"
    with pytest.raises(ApiException) as refused:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, case.manifest)
    assert refused.value.status == 422, refused.value.body
    assert case.expected_field in refused.value.body, refused.value.body
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)["items"]
    assert listed == [], "nothing was created"


def test_kubectl_get_shows_severity_phase_target_age(
    cluster: ClusterAccess, crds: None, namespace: str
) -> None:
    applied = _kubectl(
        cluster, "apply", "-n", namespace, "-f", str(ROOT / "examples/incidents/manual.yaml")
    )
    assert applied.returncode == 0, applied.stderr
    result = _kubectl(cluster, "get", "inc", "-n", namespace)
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header[:5] == ["NAME", "SEVERITY", "PHASE", "TARGET", "AGE"]
    by_category = _kubectl(cluster, "get", "mitigator", "-n", namespace)
    assert by_category.returncode == 0 and "incident.mitigator.luminamind.io" in by_category.stdout
