"""Prometheus and Alertmanager from Debian's packages, on loopback, for tests and the demo.

Prometheus scrapes and evaluates every second; its scrape targets live in a file_sd file so
tests add targets without a restart. Alertmanager runs with clustering off.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from localkube.processes import ManagedProcess, free_port, wait_until

PROMETHEUS_BINARY = "prometheus"
ALERTMANAGER_BINARY = "prometheus-alertmanager"


class MissingPackage(RuntimeError):
    """A Debian package the harness needs is not installed."""


def _require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise MissingPackage(f"{binary} not found: apt-get install {package}")
    return path


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _ready(
    url: str, context: ssl.SSLContext | None = None, headers: dict[str, str] | None = None
) -> bool:
    try:
        request = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=3, context=context) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@dataclass(frozen=True)
class WebSecurity:
    """Prometheus's --web.config.file: HTTPS with this certificate, and basic auth for these
    users (the passwords are hashed with bcrypt into the file, as Prometheus requires)."""

    cert_file: Path
    key_file: Path
    ca_file: Path
    users: dict[str, str]

    def web_config(self) -> dict[str, Any]:
        import bcrypt  # noqa: PLC0415 - only a secured Prometheus needs it

        return {
            "tls_server_config": {"cert_file": str(self.cert_file), "key_file": str(self.key_file)},
            "basic_auth_users": {
                user: bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
                for user, password in self.users.items()
            },
        }

    def readiness(self) -> tuple[ssl.SSLContext, dict[str, str]]:
        user, password = next(iter(self.users.items()))
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return ssl.create_default_context(cafile=str(self.ca_file)), {
            "Authorization": f"Basic {token}"
        }


@dataclass
class Prometheus:
    workdir: Path
    rule_files: list[Path] = field(default_factory=list)
    alertmanager_url: str | None = None
    port: int = 0
    process: ManagedProcess | None = None
    target_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    # HTTPS and basic auth (--web.config.file); None serves plain HTTP without auth.
    security: WebSecurity | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.security else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def _targets_file(self) -> Path:
        return self.workdir / "targets.json"

    def start(self) -> None:
        binary = _require(PROMETHEUS_BINARY, "prometheus")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self._targets_file.write_text("[]")
        config: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in self.rule_files],
            "scrape_configs": [
                {
                    "job_name": "localkube",
                    "scrape_interval": "1s",
                    # Re-read every second as well as on file events: a new target is
                    # scraped at once, not after file_sd's default 5 minutes.
                    "file_sd_configs": [
                        {"files": [str(self._targets_file)], "refresh_interval": "1s"}
                    ],
                }
            ],
        }
        if self.alertmanager_url:
            address = urllib.parse.urlparse(self.alertmanager_url).netloc
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [address]}]}]}
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        argv = [
            binary,
            f"--config.file={config_path}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ]
        context: ssl.SSLContext | None = None
        headers: dict[str, str] = {}
        if self.security is not None:
            web_config = self.workdir / "web.yml"
            web_config.write_text(yaml.safe_dump(self.security.web_config()))
            argv.append(f"--web.config.file={web_config}")
            context, headers = self.security.readiness()
        self.process = ManagedProcess(
            name="prometheus", argv=argv, log_path=self.workdir / "prometheus.log"
        )
        self.process.start()
        wait_until(
            lambda: _ready(f"{self.url}/-/ready", context, headers),
            timeout=60,
            what="Prometheus /-/ready",
        )

    def set_targets(self, targets: list[dict[str, Any]]) -> None:
        """Replace the scrape targets: ``[{"targets": ["127.0.0.1:9000"], "labels": {...}}]``.

        Prometheus watches the file; the change takes effect within a second or so.
        """
        staging = self._targets_file.with_suffix(".tmp")
        staging.write_text(json.dumps(targets))
        staging.rename(self._targets_file)

    def add_targets(self, key: str, targets: list[str], labels: dict[str, str]) -> None:
        """Scrape ``targets`` (host:port) with ``labels``, beside the other groups."""
        self.target_groups[key] = {"targets": targets, "labels": labels}
        self.set_targets(list(self.target_groups.values()))

    def remove_targets(self, key: str) -> None:
        self.target_groups.pop(key, None)
        self.set_targets(list(self.target_groups.values()))

    def query(self, promql: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"query": promql})
        body = _get_json(f"{self.url}/api/v1/query?{query}")
        return list(body["data"]["result"])

    def alerts(self) -> list[dict[str, Any]]:
        return list(_get_json(f"{self.url}/api/v1/alerts")["data"]["alerts"])

    def stop(self) -> None:
        if self.process:
            self.process.stop()


@dataclass
class Alertmanager:
    workdir: Path
    webhook_url: str | None = None
    bearer_token: str | None = None
    group_wait: str = "0s"
    group_interval: str = "1s"
    repeat_interval: str = "1m"
    port: int = 0
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        receiver: dict[str, Any] = {"name": "default"}
        if self.webhook_url:
            webhook: dict[str, Any] = {"url": self.webhook_url, "send_resolved": True}
            if self.bearer_token:
                webhook["http_config"] = {
                    "authorization": {"type": "Bearer", "credentials": self.bearer_token}
                }
            receiver["webhook_configs"] = [webhook]
        return {
            "route": {
                "receiver": "default",
                "group_by": ["alertname", "namespace", "deployment"],
                "group_wait": self.group_wait,
                "group_interval": self.group_interval,
                "repeat_interval": self.repeat_interval,
            },
            "receivers": [receiver],
        }

    def start(self) -> None:
        binary = _require(ALERTMANAGER_BINARY, "prometheus-alertmanager")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        config_path = self.workdir / "alertmanager.yml"
        config_path.write_text(yaml.safe_dump(self.config()))
        self.process = ManagedProcess(
            name="alertmanager",
            argv=[
                binary,
                f"--config.file={config_path}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.path={self.workdir / 'data'}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            log_path=self.workdir / "alertmanager.log",
        )
        self.process.start()
        wait_until(lambda: _ready(f"{self.url}/-/ready"), timeout=60, what="Alertmanager /-/ready")

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status == 200, resp.status

    def stop(self) -> None:
        if self.process:
            self.process.stop()
