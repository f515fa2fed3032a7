"""mitigator.k8s's own HTTP: the paths and content types the kubernetes client sent, the API
server's errors as mitigator's exceptions (as ApiException was translated), credentials read
from a kubeconfig or a ServiceAccount, and no secret in a repr or a message."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mitigator.k8s import AlreadyExists, ApiError, Conflict, Invalid, NamespaceNotFound, NotFound
from mitigator.k8s.errors import translate, translate_tested_write, translate_write
from mitigator.k8s.login import LoginError, from_kubeconfig, from_service_account
from mitigator.k8s.transport import (
    JSON_PATCH,
    MERGE_PATCH,
    Endpoint,
    HttpError,
    api_path,
    encode,
    patch_content_type,
    url_of,
)

SECRET = "s3cret-token-value"
FAILED_TEST = (
    "the server rejected our request due to an error in our request: "
    'testing value /metadata/resourceVersion failed: "41" != "42"'
)


def status(code: int, reason: str = "", message: str = "", **details: Any) -> str:
    return json.dumps(
        {"kind": "Status", "code": code, "reason": reason, "message": message, "details": details}
    )


# ----------------------------------------------------------------- paths and bodies


def test_paths_of_core_grouped_custom_and_cluster_wide_resources() -> None:
    assert api_path("v1", "pods", namespace="ns", name="p", subresource="log") == (
        "/api/v1/namespaces/ns/pods/p/log"
    )
    assert api_path("apps/v1", "deployments", namespace="ns", name="web") == (
        "/apis/apps/v1/namespaces/ns/deployments/web"
    )
    assert api_path("mitigator.luminamind.io/v1alpha1", "incidents") == (
        "/apis/mitigator.luminamind.io/v1alpha1/incidents"
    )
    assert api_path("autoscaling/v2", "horizontalpodautoscalers", namespace="ns") == (
        "/apis/autoscaling/v2/namespaces/ns/horizontalpodautoscalers"
    )
    assert api_path("v1", "pods", namespace="a/b", name="../x") == (
        "/api/v1/namespaces/a%2Fb/pods/..%2Fx"
    )


def test_an_empty_selector_is_no_selector_and_values_are_encoded() -> None:
    assert url_of("https://k:6443/", "/api/v1/pods", {"labelSelector": ""}) == (
        "https://k:6443/api/v1/pods"
    )
    assert url_of(
        "https://k:6443",
        "/api/v1/namespaces/n/events",
        {"fieldSelector": "involvedObject.kind=Pod,involvedObject.name=p", "limit": None},
    ) == (
        "https://k:6443/api/v1/namespaces/n/events"
        "?fieldSelector=involvedObject.kind%3DPod%2CinvolvedObject.name%3Dp"
    )
    assert url_of("https://k", "/x", {"container": "app", "tailLines": 50}).endswith(
        "?container=app&tailLines=50"
    )


def test_a_list_is_a_json_patch_and_an_object_a_merge_patch() -> None:
    assert patch_content_type([{"op": "test", "path": "/a", "value": 1}]) == JSON_PATCH
    assert patch_content_type({"metadata": {"labels": {"a": None}}}) == MERGE_PATCH


def test_bodies_keep_nulls_and_write_datetimes_as_the_client_did() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
    assert json.loads(encode({"a": None, "t": when})) == {
        "a": None,
        "t": "2026-01-02T03:04:05.600000+00:00",
    }


# ----------------------------------------------------------------- errors


def test_not_found_and_conflicts() -> None:
    missing = HttpError(404, "Not Found", status(404, "NotFound", "x not found", name="web"))
    assert isinstance(translate(missing, "Deployment ns/web"), NotFound)
    assert str(translate(missing, "Deployment ns/web")) == "Deployment ns/web not found"

    conflict = HttpError(409, "Conflict", status(409, "Conflict", "the object has been modified"))
    assert isinstance(translate(conflict, "Lease ns/l"), Conflict)
    assert str(translate(conflict, "Lease ns/l")) == "Lease ns/l: conflict: Conflict"
    written = translate_write(conflict, "Lease ns/l")
    assert type(written) is Conflict
    assert str(written) == "Lease ns/l: conflict: the object has been modified"

    exists = HttpError(409, "Conflict", status(409, "AlreadyExists", "exists", name="l"))
    assert type(translate_write(exists, "Lease ns/l")) is AlreadyExists


def test_a_failed_json_patch_test_is_a_conflict_and_other_422s_are_invalid() -> None:
    failed = HttpError(422, "Unprocessable Entity", status(422, "Invalid", FAILED_TEST))
    for translated in (
        translate(failed, "Deployment ns/web"),
        translate_tested_write(failed, "Incident ns/i"),
    ):
        assert type(translated) is Conflict
        assert "changed while it was being patched" in str(translated)

    invalid = HttpError(422, "Unprocessable Entity", status(422, "Invalid", "spec.x: Required"))
    assert type(translate_tested_write(invalid, "Incident ns/i")) is Invalid
    assert str(translate_write(invalid, "Incident ns/i")) == "spec.x: Required"


def test_a_missing_namespace_and_other_answers() -> None:
    gone = HttpError(
        404, "Not Found", status(404, "NotFound", 'namespaces "x" not found', kind="namespaces")
    )
    assert type(translate_write(gone, "Incident x/i")) is NamespaceNotFound

    unavailable = HttpError(503, "Service Unavailable", status(503, message="etcd down"))
    error = translate(unavailable, "Pod ns/p")
    assert isinstance(error, ApiError) and error.transient and error.status == 503
    assert str(error) == "Pod ns/p: API error 503: Service Unavailable"
    assert error.server_message == "etcd down"

    refused = translate(HttpError(403, "Forbidden", "not json"), "Secret ns/s")
    assert isinstance(refused, ApiError) and not refused.transient
    handshake = translate(HttpError(0, "SSLError\ncertificate verify failed"), "Pod ns/p")
    assert isinstance(handshake, ApiError) and handshake.status == 0


def test_no_secret_in_an_endpoint_or_an_error() -> None:
    endpoint = Endpoint(
        server="https://k:6443",
        authorization=f"Bearer {SECRET}",
        private_key_data=SECRET,
        headers={"Impersonate-User": SECRET},
    )
    assert SECRET not in repr(endpoint) and SECRET not in str(endpoint)
    error = HttpError(401, "Unauthorized", f'{{"message": "token {SECRET} expired"}}')
    assert SECRET not in str(error) and SECRET not in repr(error)
    assert SECRET not in str(translate(error, "Pod ns/p"))


# ----------------------------------------------------------------- credentials


def test_a_kubeconfig_current_context_with_relative_paths_and_a_token_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "token").write_text(SECRET + "\n")
    first = tmp_path / "first"
    first.write_text(
        json.dumps(
            {
                "current-context": "two",
                "contexts": [{"name": "two", "context": {"cluster": "c2", "user": "u2"}}],
                "users": [{"name": "u2", "user": {"tokenFile": "token"}}],
            }
        )
    )
    second = tmp_path / "sub" / "second"
    second.parent.mkdir()
    second.write_text(
        json.dumps(
            {
                "current-context": "ignored: the first file's wins",
                "clusters": [
                    {
                        "name": "c2",
                        "cluster": {"server": "https://k2", "certificate-authority": "ca.crt"},
                    }
                ],
                "users": [{"name": "u2", "user": {"token": "shadowed by the first file"}}],
            }
        )
    )
    endpoint = from_kubeconfig(f"{first}:{second}")
    assert endpoint.server == "https://k2"
    assert endpoint.ca_path == str(tmp_path / "sub" / "ca.crt")
    assert endpoint.authorization == f"Bearer {SECRET}"


def test_client_certificates_and_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config"

    def write(user: dict[str, Any]) -> None:
        cluster = {"server": "https://k", "insecure-skip-tls-verify": True}
        config.write_text(
            json.dumps(
                {
                    "current-context": "x",
                    "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                    "clusters": [{"name": "c", "cluster": cluster}],
                    "users": [{"name": "u", "user": user}],
                }
            )
        )

    monkeypatch.setenv("KUBECONFIG", str(config))
    write({"client-certificate": "/pki/admin.crt", "client-key-data": "a2V5"})
    endpoint = from_kubeconfig()
    assert endpoint.insecure and endpoint.authorization is None
    assert (endpoint.certificate_path, endpoint.private_key_data) == ("/pki/admin.crt", "a2V5")

    write({"exec": {"command": "aws"}})
    with pytest.raises(LoginError, match="exec plugin"):
        from_kubeconfig()
    with pytest.raises(FileNotFoundError):
        from_kubeconfig(str(tmp_path / "missing"))


def test_a_service_account_inside_a_pod_only(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(SECRET)
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    endpoint = from_service_account(tmp_path, env)
    assert endpoint is not None
    assert endpoint.server == "https://[fd00::1]:443"
    assert endpoint.ca_path == str(tmp_path / "ca.crt")
    assert endpoint.authorization == f"Bearer {SECRET}"
    assert from_service_account(tmp_path, {}) is None  # not in a pod
