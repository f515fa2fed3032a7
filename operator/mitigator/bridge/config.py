"""The bridge's settings: from the environment (inside the operator, or a Deployment) and the
command line (`mitigator bridge`). Pure: reading a token file is the only I/O."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mitigator.bridge.mapping import MappingRules

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_CONCURRENCY = 16
MIN_TOKEN_LENGTH = 16


class ConfigError(ValueError):
    """The bridge cannot start with these settings."""


@dataclass(frozen=True)
class BridgeConfig:
    """What the bridge needs besides a place to listen."""

    token: str = field(repr=False)
    rules: MappingRules = field(default_factory=MappingRules)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Kubernetes API calls in flight at once (a thread pool of this size, and as many pooled
    # connections); see docs/benchmarks.md for the measurement behind the default.
    concurrency: int = DEFAULT_CONCURRENCY

    def __post_init__(self) -> None:
        if len(self.token) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                f"the bearer token must be at least {MIN_TOKEN_LENGTH} characters "
                "(MITIGATOR_BRIDGE_TOKEN or --token-file)"
            )
        if self.max_body_bytes < 1:
            raise ConfigError("the request size limit must be positive")
        if self.concurrency < 1:
            raise ConfigError("the concurrency must be at least 1")

    @classmethod
    def from_environment(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        token_file: str | None = None,
        target_labels: list[str] | None = None,
        namespaces: list[str] | None = None,
        max_body_bytes: int | None = None,
        concurrency: int | None = None,
    ) -> BridgeConfig:
        """Settings from `MITIGATOR_BRIDGE_*`; explicit arguments (the command line) win.

        - `MITIGATOR_BRIDGE_TOKEN`, or `MITIGATOR_BRIDGE_TOKEN_FILE` / `token_file` (a mounted
          Secret): the bearer token Alertmanager sends. Required.
        - `MITIGATOR_BRIDGE_TARGET_LABELS`: comma-separated alert labels naming the Deployment,
          first present wins (default deployment,app,app_kubernetes_io_name).
        - `MITIGATOR_BRIDGE_NAMESPACES`: comma-separated namespace patterns (fnmatch) the bridge
          may create Incidents in (default: any).
        - `MITIGATOR_BRIDGE_MAX_BODY_BYTES` (default 1 MiB), `MITIGATOR_BRIDGE_CONCURRENCY`.
        """
        env = os.environ if environ is None else environ
        token = read_token(env, token_file)
        rules = MappingRules()
        labels = target_labels or _split(env.get("MITIGATOR_BRIDGE_TARGET_LABELS", ""))
        allowed = namespaces or _split(env.get("MITIGATOR_BRIDGE_NAMESPACES", ""))
        try:
            return cls(
                token=token,
                rules=MappingRules(
                    target_labels=tuple(labels) or rules.target_labels,
                    allowed_namespaces=tuple(allowed),
                ),
                max_body_bytes=max_body_bytes
                or int(env.get("MITIGATOR_BRIDGE_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)),
                concurrency=concurrency
                or int(env.get("MITIGATOR_BRIDGE_CONCURRENCY", DEFAULT_CONCURRENCY)),
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


def read_token(env: Mapping[str, str], token_file: str | None = None) -> str:
    """The bearer token: from `token_file` or MITIGATOR_BRIDGE_TOKEN_FILE if given (a mounted
    Secret), else MITIGATOR_BRIDGE_TOKEN. Surrounding whitespace (a trailing newline) is cut."""
    path = token_file or env.get("MITIGATOR_BRIDGE_TOKEN_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the token file {path}: {exc.strerror}") from None
    token = env.get("MITIGATOR_BRIDGE_TOKEN", "").strip()
    if not token:
        raise ConfigError("no bearer token: set MITIGATOR_BRIDGE_TOKEN or pass --token-file")
    return token


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
