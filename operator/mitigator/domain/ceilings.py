"""Operator-wide ceilings a namespaced policy cannot exceed: whoever may write a
MitigationPolicy in a namespace must not be able to point the operator at any URL (requests
from inside the cluster), raise replicas without bound, or live in a namespace the operator
must never touch. A policy outside them is Invalid, with the reason."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from mitigator.models import PolicySpec

ANY = "*"


@dataclass(frozen=True, kw_only=True)
class Ceilings:
    """`allowed_prometheus_urls` are URL patterns (fnmatch, e.g. ``https://prom.monitoring:*``);
    empty allows only `default_prometheus_url`. `allowed_webhook_hosts` are host patterns
    (``hooks.slack.com``, ``*.pagerduty.com``); empty allows none. ``*`` allows anything."""

    allowed_prometheus_urls: tuple[str, ...] = ()
    default_prometheus_url: str | None = None
    allowed_webhook_hosts: tuple[str, ...] = ()
    max_replicas: int | None = None
    protected_namespaces: tuple[str, ...] = ()


def prometheus_url_refusal(url: str, ceilings: Ceilings) -> str | None:
    if url.rstrip("/") == (ceilings.default_prometheus_url or "").rstrip("/"):
        return None
    if any(fnmatchcase(url, pattern) for pattern in ceilings.allowed_prometheus_urls):
        return None
    return (
        f"metrics.prometheusURL {url} is not allowed by the operator "
        "(MITIGATOR_ALLOWED_PROMETHEUS_URLS)"
    )


def webhook_host_refusal(url: str, ceilings: Ceilings, *, field: str) -> str | None:
    """Why the operator must not send a request to `url`, or None. The URL itself is not
    quoted (it may hold a token); only its host is."""
    host = (urlsplit(url).hostname or "").lower()
    allowed = ceilings.allowed_webhook_hosts
    if host and any(fnmatchcase(host, pattern.lower()) for pattern in allowed):
        return None
    return (
        f"{field}: host {host or '?'} is not allowed by the operator "
        "(MITIGATOR_ALLOWED_WEBHOOK_HOSTS)"
    )


def within_ceilings(spec: PolicySpec, ceilings: Ceilings) -> PolicySpec:
    """`spec` with the defaults it did not set brought under the ceilings: a policy that
    leaves guardrails.maxReplicas unset gets the operator's ceiling when the default (20) is
    above it, rather than being refused for a number it never wrote."""
    guardrails = spec.guardrails
    if (
        ceilings.max_replicas is not None
        and "max_replicas" not in guardrails.model_fields_set
        and guardrails.max_replicas > ceilings.max_replicas
    ):
        capped = guardrails.model_copy(update={"max_replicas": ceilings.max_replicas})
        return spec.model_copy(update={"guardrails": capped})
    return spec


def ceiling_refusal(spec: PolicySpec, *, namespace: str | None, ceilings: Ceilings) -> str | None:
    """The first ceiling `spec` exceeds, as a reason for its Invalid condition; None if within."""
    if namespace is not None and any(
        fnmatchcase(namespace, pattern) for pattern in ceilings.protected_namespaces
    ):
        return f"namespace {namespace} is protected by the operator: no policy acts in it"
    url = spec.metrics.prometheus_url
    if url is not None and (refusal := prometheus_url_refusal(url, ceilings)):
        return refusal
    for level in spec.escalation:
        if level.webhook is not None and (
            refusal := webhook_host_refusal(
                level.webhook, ceilings, field=f"escalation level {level.level} webhook"
            )
        ):
            return refusal
    if ceilings.max_replicas is not None and spec.guardrails.max_replicas > ceilings.max_replicas:
        return (
            f"guardrails.maxReplicas {spec.guardrails.max_replicas} is above the operator's "
            f"ceiling of {ceilings.max_replicas} (MITIGATOR_MAX_REPLICAS)"
        )
    return None
