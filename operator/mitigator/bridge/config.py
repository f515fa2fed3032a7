"""The bridge's settings, one validated object for `mitigator bridge` and for the bridge inside
the operator: ``MITIGATOR_BRIDGE_*`` from the environment, the command line winning. Pure:
reading a token file is the only I/O.

- ``MITIGATOR_BRIDGE_TOKEN``, or ``MITIGATOR_BRIDGE_TOKEN_FILE`` / ``--token-file`` (a mounted
  Secret, which wins): the bearer token Alertmanager sends, at least 16 characters. Required
  to run a bridge.
- ``MITIGATOR_BRIDGE_TARGET_LABELS``: comma-separated alert labels naming the Deployment, the
  first present wins (default deployment,app,app_kubernetes_io_name).
- ``MITIGATOR_BRIDGE_NAMESPACES``: comma-separated namespace patterns (fnmatch) the bridge may
  create Incidents in (default: any).
- ``MITIGATOR_BRIDGE_PROTECTED_NAMESPACES``: comma-separated namespace patterns (fnmatch) the
  bridge never creates Incidents in, on top of the control plane's (kube-system, kube-public,
  kube-node-lease), which are always refused (default: none more).
- ``MITIGATOR_BRIDGE_POD_LABEL``: the alert label naming a pod, followed to its Deployment when
  no target label is present (default pod).
- ``MITIGATOR_BRIDGE_MAX_ALERTS_PER_INCIDENT`` (default and at most 100, the CRD's limit),
  ``MITIGATOR_BRIDGE_MAX_LABELS_PER_ALERT`` (default 32),
  ``MITIGATOR_BRIDGE_MAX_LABEL_NAME_BYTES`` (default 64) and
  ``MITIGATOR_BRIDGE_MAX_LABEL_VALUE_BYTES`` (default 256): what an Incident stores of an
  alert group; the rest is counted, not stored (see `mitigator.bridge.limits`).
- ``MITIGATOR_BRIDGE_MAX_BODY_BYTES`` (default 1 MiB), ``MITIGATOR_BRIDGE_CONCURRENCY``
  (Kubernetes API calls in flight, default 16; see docs/BENCHMARKS.md).
- ``MITIGATOR_BRIDGE_HOST`` (default 127.0.0.1), ``MITIGATOR_BRIDGE_PORT``: the operator runs
  its bridge only when a port is set; `mitigator bridge` listens on 8080 without one.
- ``MITIGATOR_BRIDGE_TLS_CERT`` and ``MITIGATOR_BRIDGE_TLS_KEY`` (PEM files, both or neither):
  HTTPS instead of HTTP.

An empty variable counts as unset. The token never appears in a repr, a log line or an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mitigator.bridge.limits import (
    DEFAULT_MAX_LABEL_NAME_BYTES,
    DEFAULT_MAX_LABEL_VALUE_BYTES,
    DEFAULT_MAX_LABELS,
    MAX_RECORDED_ALERTS,
    StorageLimits,
)
from mitigator.bridge.targets import DEFAULT_POD_LABEL, DEFAULT_TARGET_LABELS, MappingRules

ENV_PREFIX = "MITIGATOR_BRIDGE_"
DEFAULT_PORT = 8080
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_CONCURRENCY = 16
MIN_TOKEN_LENGTH = 16


class ConfigError(ValueError):
    """The bridge cannot start with these settings."""


def _split(value: Any) -> Any:
    """A comma-separated string (the environment) or a list (the command line) → a tuple."""
    parts = value.split(",") if isinstance(value, str) else value
    if isinstance(parts, list | tuple):
        return tuple(part.strip() for part in parts if isinstance(part, str) and part.strip())
    return parts


def _at_least(minimum: int, message: str) -> AfterValidator:
    def check(value: int) -> int:
        if value < minimum:
            raise ValueError(message)
        return value

    return AfterValidator(check)


def _long_enough(token: SecretStr | None) -> SecretStr | None:
    if token is not None and len(token.get_secret_value()) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"the bearer token must be at least {MIN_TOKEN_LENGTH} characters "
            "(MITIGATOR_BRIDGE_TOKEN or --token-file)"
        )
    return token


Names = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split)]


class BridgeSettings(BaseSettings):
    """Everything the bridge needs: who may call it, what it maps, its limits, where it listens."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
    )

    token: Annotated[SecretStr | None, AfterValidator(_long_enough)] = None
    token_file: Path | None = None
    target_labels: Annotated[Names, Field(min_length=1)] = DEFAULT_TARGET_LABELS
    namespaces: Names = ()
    protected_namespaces: Names = ()
    pod_label: str = DEFAULT_POD_LABEL
    max_alerts_per_incident: Annotated[int, Field(ge=1, le=MAX_RECORDED_ALERTS)] = (
        MAX_RECORDED_ALERTS
    )
    max_labels_per_alert: Annotated[int, Field(ge=1)] = DEFAULT_MAX_LABELS
    max_label_name_bytes: Annotated[int, Field(ge=1)] = DEFAULT_MAX_LABEL_NAME_BYTES
    max_label_value_bytes: Annotated[int, Field(ge=1)] = DEFAULT_MAX_LABEL_VALUE_BYTES
    max_body_bytes: Annotated[int, _at_least(1, "the request size limit must be positive")] = (
        DEFAULT_MAX_BODY_BYTES
    )
    concurrency: Annotated[int, _at_least(1, "the concurrency must be at least 1")] = (
        DEFAULT_CONCURRENCY
    )
    host: str = Field(default="127.0.0.1", min_length=1)
    # None: no port set (the operator runs no bridge; `mitigator bridge` uses DEFAULT_PORT).
    port: int | None = Field(default=None, ge=0, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _read_token(cls, data: Any) -> Any:
        """The token file, when given, wins; surrounding whitespace (a trailing newline) is
        cut, and a blank token is no token."""
        if not isinstance(data, dict):
            return data
        path = data.get("token_file")
        if path:
            try:
                token: Any = Path(path).read_text()
            except OSError as exc:
                raise ValueError(f"cannot read the token file {path}: {exc.strerror}") from None
        else:
            token = data.get("token")
        if isinstance(token, SecretStr):
            token = token.get_secret_value()
        if isinstance(token, str):
            token = token.strip() or None
        rest = {key: value for key, value in data.items() if key != "token"}
        return rest if token is None else {**rest, "token": token}

    @model_validator(mode="after")
    def _tls_pair(self) -> BridgeSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError(
                "--tls-cert and --tls-key go together "
                "(MITIGATOR_BRIDGE_TLS_CERT and MITIGATOR_BRIDGE_TLS_KEY)"
            )
        return self

    @property
    def rules(self) -> MappingRules:
        return MappingRules(
            target_labels=self.target_labels,
            allowed_namespaces=self.namespaces,
            protected_namespaces=self.protected_namespaces,
            pod_label=self.pod_label,
        )

    @property
    def limits(self) -> StorageLimits:
        return StorageLimits(
            max_alerts=self.max_alerts_per_incident,
            max_labels=self.max_labels_per_alert,
            max_label_name_bytes=self.max_label_name_bytes,
            max_label_value_bytes=self.max_label_value_bytes,
        )

    def bearer_token(self) -> SecretStr:
        """The token a running bridge requires."""
        if self.token is None:
            raise ConfigError("no bearer token: set MITIGATOR_BRIDGE_TOKEN or pass --token-file")
        return self.token


def load_bridge_settings(**overrides: Any) -> BridgeSettings:
    """The settings from the environment; `overrides` (the command line, where None means
    "not given") win. `ConfigError` says what is wrong, without the token."""
    try:
        return BridgeSettings(
            **{key: value for key, value in overrides.items() if value is not None}
        )
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(error: ValidationError) -> str:
    problems = []
    for detail in error.errors(include_url=False, include_input=False):
        if detail["type"] == "value_error":  # one of the messages above
            problems.append(str(detail.get("ctx", {}).get("error", detail["msg"])))
        else:
            name = str(detail["loc"][0]) if detail["loc"] else "settings"
            problems.append(f"invalid {name} ({ENV_PREFIX}{name.upper()}): {detail['msg']}")
    return "; ".join(problems)
