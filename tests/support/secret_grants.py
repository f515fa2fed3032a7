"""The grant a team adds so that the operator may read the Secrets its policies name:
config/policy-secrets (a Role with `get` restricted by resourceNames, bound to the operator's
ServiceAccount), rendered by the project's own `kubectl kustomize` and applied for exactly the
names a test uses. Only operators run as their ServiceAccount need it (the session's
in-process operator uses the admin certificate); neither overlay grants any Secret."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from functools import partial
from typing import Any

import yaml
from kubernetes import client

from localkube.build import bin_dir
from localkube.processes import wait_until
from localkube.testing import ClusterAccess
from tests.support.world import INSTALL_NAMESPACE, ROOT, kubectl

GRANT = ROOT / "config" / "policy-secrets"


def grant_secrets(
    cluster: ClusterAccess,
    api_client: client.ApiClient,
    namespace: str,
    names: Sequence[str],
    *,
    service_account_namespace: str = INSTALL_NAMESPACE,
) -> None:
    """Let the operator's ServiceAccount (`mitigator` in `service_account_namespace`) `get`
    exactly the Secrets `names` of `namespace`, and wait until the API server's authorizer
    says so (RBAC reaches the authorizer through an informer, not at once)."""
    # An empty resourceNames would grant every Secret of the namespace.
    assert names, "grant at least one Secret by name"
    rendered = subprocess.run(
        [str(bin_dir() / "kubectl"), "kustomize", str(GRANT)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    docs: list[dict[str, Any]] = [doc for doc in yaml.safe_load_all(rendered) if doc]
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
        if doc["kind"] == "Role":
            [rule] = doc["rules"]
            rule["resourceNames"] = list(names)
        for subject in doc.get("subjects") or []:
            subject["namespace"] = service_account_namespace
    kubectl(cluster, "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(docs))
    for name in names:
        wait_until(
            partial(
                may_get_secret,
                api_client,
                namespace,
                name,
                service_account_namespace=service_account_namespace,
            ),
            timeout=30,
            what=f"the operator to be allowed to get Secret {namespace}/{name}",
        )


def may_get_secret(
    api_client: client.ApiClient, namespace: str, name: str, *, service_account_namespace: str
) -> bool:
    """What the API server's authorizer answers for the operator's `get` of that Secret."""
    user = f"system:serviceaccount:{service_account_namespace}:mitigator"
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=user,
            groups=[
                "system:serviceaccounts",
                f"system:serviceaccounts:{service_account_namespace}",
                "system:authenticated",
            ],
            resource_attributes=client.V1ResourceAttributes(
                namespace=namespace, verb="get", resource="secrets", name=name
            ),
        )
    )
    answer = client.AuthorizationV1Api(api_client).create_subject_access_review(review)
    return bool(answer.status.allowed)
