"""One logging pipeline for our records and kopf's: structlog renders both, as JSON (one
object per line, for a cluster's log collector) or as readable console lines (a terminal).

Secrets never reach a line: every value the operator reads from a Secret, or a token file, is
registered with `register_secret` and masked in every rendered field, including tracebacks.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import MutableMapping
from typing import Any, Literal
from urllib.parse import urlsplit

import structlog

LogFormat = Literal["json", "console"]
REDACTED = "[REDACTED]"
# Shorter values would mask ordinary words; no real token or URL is this short.
_MIN_SECRET_LENGTH = 6

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask `value` in every log line from now on."""
    if value and len(value) >= _MIN_SECRET_LENGTH:
        with _secrets_lock:
            _secrets.add(value)


def register_secret_url(url: str | None) -> None:
    """Mask a secret URL, and its path and query on their own: HTTP libraries log the host
    and the path apart (urllib3: `http://host:port "POST /services/T0/B0/token"`)."""
    if not url:
        return
    register_secret(url)
    parts = urlsplit(url)
    register_secret(parts.path + (f"?{parts.query}" if parts.query else ""))
    if parts.path not in ("", "/"):
        register_secret(parts.path)


def redact(text: str) -> str:
    """`text` with every registered secret masked (longest first, so that a URL holding a
    token is masked whole)."""
    with _secrets_lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _redact_values(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if isinstance(value, str):
            event_dict[key] = redact(value)
        elif value is not None and not isinstance(value, int | float | bool):
            event_dict[key] = redact(str(value))
    return event_dict


def _kopf_object(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """kopf's per-object loggers carry the object in `k8s_ref`: name it as our lines do."""
    record = event_dict.get("_record")
    ref = getattr(record, "k8s_ref", None) if record is not None else None
    if isinstance(ref, dict):
        event_dict.setdefault("namespace", ref.get("namespace"))
        kind, name = ref.get("kind"), ref.get("name")
        if kind == "Incident":
            event_dict.setdefault("incident", name)
        else:
            event_dict.setdefault("object", f"{kind}/{name}")
    return event_dict


def default_format() -> LogFormat:
    """JSON in a cluster (no terminal), console on a terminal."""
    return "console" if sys.stderr.isatty() else "json"


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def formatter(fmt: LogFormat) -> logging.Formatter:
    """The formatter of the pipeline: kopf's and structlog's records, secrets masked."""
    renderer: Any = (
        structlog.processors.JSONRenderer(default=str)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, _kopf_object],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact_values,
            renderer,
        ],
    )


def configure_logging(*, fmt: LogFormat | None = None, level: str = "INFO") -> None:
    """Route the standard library's records (kopf's, aiohttp's, ours) and structlog's through
    one formatter on stderr. Idempotent: a second call replaces the first's handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt or default_format()))
    handler.set_name("mitigator")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "mitigator"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # kopf's per-object records repeat at DEBUG what its INFO lines say; aiohttp's access log
    # would log every scrape of /metrics.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # urllib3's DEBUG lines quote every request's URL; secret ones are masked anyway, but a
    # URL nobody registered (a typo'd Secret key) must not be written either.
    logging.getLogger("urllib3").setLevel(logging.INFO)
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str = "mitigator") -> Any:
    """A structlog logger: ``log.info("phase changed", namespace=..., incident=...)``."""
    return structlog.stdlib.get_logger(name)
