"""The Prometheus implementation of the domain's metrics provider.

"No data" and "Prometheus unreachable" are answers, not exceptions: the domain records them
and never counts them as healthy. The connection verifies TLS by default (a CA bundle can be
given), and can present a client certificate, a bearer token (re-read from its file on every
query, so a rotated token is used at once), basic auth, and extra headers such as a tenant's
`X-Scope-OrgID`. A certificate that does not verify is "unreachable": fail closed.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from mitigator.models.evidence import MetricSample
from mitigator.observability.logs import register_secret
from mitigator.observability.metrics import PROMETHEUS_QUERY_ERRORS


@dataclass(frozen=True, kw_only=True)
class PrometheusConnection:
    """How to reach Prometheus; every file is read when a query is made."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    bearer_token_file: str | None = None
    username: str | None = None
    password_file: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    insecure_skip_verify: bool = False
    # Values held in memory (from a policy's Secret) instead of files.
    bearer_token: str | None = None
    password: str | None = None

    def verify(self) -> bool | str:
        if self.insecure_skip_verify:
            return False
        return self.ca_file or True

    def request_options(self) -> dict[str, Any]:
        """`requests` keyword arguments: verify, cert, auth, headers (secrets registered for
        redaction as they are read)."""
        headers = dict(self.headers)
        options: dict[str, Any] = {"verify": self.verify()}
        if self.cert_file and self.key_file:
            options["cert"] = (self.cert_file, self.key_file)
        token = self.bearer_token
        if self.bearer_token_file:
            token = Path(self.bearer_token_file).read_text().strip()
        if token:
            register_secret(token)
            headers["Authorization"] = f"Bearer {token}"
        password = self.password
        if self.password_file:
            password = Path(self.password_file).read_text().strip()
        if self.username and password:
            register_secret(password)
            options["auth"] = (self.username, password)
        options["headers"] = headers
        return options


def connection_from_secret(data: dict[str, str], *, files: Path) -> PrometheusConnection:
    """A policy's connection from its Secret's keys: `token`, `username` + `password`,
    `ca.crt`, `tls.crt` + `tls.key`, `header.<Name>`. PEM values are written under `files`
    (named by their digest: the TLS library reads files), readable by this user only."""

    def pem_file(key: str) -> str | None:
        value = data.get(key)
        if not value:
            return None
        path = files / hashlib.sha256(value.encode()).hexdigest()
        if not path.exists():
            files.mkdir(mode=0o700, parents=True, exist_ok=True)
            partial = path.with_suffix(".partial")
            partial.write_text(value)
            partial.chmod(0o600)
            partial.replace(path)
        return str(path)

    for name in ("token", "password", "tls.key"):
        register_secret(data.get(name, "").strip() or None)
    cert, key = pem_file("tls.crt"), pem_file("tls.key")
    return PrometheusConnection(
        ca_file=pem_file("ca.crt"),
        cert_file=cert if cert and key else None,
        key_file=key if cert and key else None,
        bearer_token=(data.get("token") or "").strip() or None,
        username=(data.get("username") or "").strip() or None,
        password=(data.get("password") or "").strip() or None,
        headers={
            name.removeprefix("header."): value.strip()
            for name, value in data.items()
            if name.startswith("header.") and len(name) > len("header.")
        },
    )


class PrometheusProvider:
    """``query(promql)`` → one number, reduced from an instant vector or scalar."""

    def __init__(
        self,
        url: str,
        *,
        connection: PrometheusConnection | None = None,
        timeout_seconds: float = 3.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.connection = connection or PrometheusConnection()
        # No retries: a tick that waits on a dead Prometheus delays mitigation; the next tick
        # asks again anyway.
        self._session = requests.Session()

    def query(self, promql: str) -> MetricSample:
        try:
            options = self.connection.request_options()
        except OSError as exc:
            return _failed("config", f"Prometheus credentials unreadable: {exc.strerror}")
        try:
            response = self._session.get(
                f"{self.url}/api/v1/query",
                params={"query": promql, "timeout": f"{int(self.timeout_seconds * 1000)}ms"},
                timeout=self.timeout_seconds,
                **options,
            )
        except requests.exceptions.SSLError:
            return _failed(
                "tls", f"Prometheus at {self.url}: TLS verification failed (check the CA bundle)"
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            return _failed(
                "unreachable", f"Prometheus at {self.url} unreachable: {exc.__class__.__name__}"
            )
        except requests.RequestException as exc:
            return _failed("unreachable", f"Prometheus at {self.url}: {exc.__class__.__name__}")
        if response.status_code in (401, 403):
            return _failed(
                "auth",
                f"Prometheus at {self.url} refused the credentials (HTTP {response.status_code})",
            )
        try:
            body = response.json()
        except ValueError:
            return _failed(
                "unreachable", f"Prometheus at {self.url}: HTTP {response.status_code}, not JSON"
            )
        if body.get("status") != "success":
            PROMETHEUS_QUERY_ERRORS.labels("rejected").inc()
            error = str(body.get("error", response.status_code))[:300]
            return MetricSample.error(f"Prometheus rejected the query: {error}")
        data = body.get("data") or {}
        if data.get("resultType") == "scalar":
            return _reduce({"value": data.get("result")})
        return _reduce(data.get("result"))


def _failed(reason: str, detail: str) -> MetricSample:
    PROMETHEUS_QUERY_ERRORS.labels(reason).inc()
    return MetricSample.unreachable(detail)


def _reduce(result: object) -> MetricSample:
    """An instant vector with one series gives its value; several series are an ambiguous
    template (the largest value is taken, so a bad replica is never averaged away); none, or
    NaN (0/0 when there is no traffic), is no data."""
    if isinstance(result, list):
        values = [float(series["value"][1]) for series in result if "value" in series]
    elif isinstance(result, dict) and "value" in result:  # a scalar result
        values = [float(result["value"][1])]
    else:
        values = []
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return MetricSample.no_data(
            "the query returned no samples" if not values else "NaN (no traffic)"
        )
    return MetricSample.ok(max(finite))
