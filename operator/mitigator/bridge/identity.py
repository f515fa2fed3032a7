"""What an Incident made from alerts is called and how it is labelled. Pure.

Alertmanager resends every group each group_interval (and after restarts, and from every
replica of an HA pair), so the Incident's name is derived from what identifies it:
``<deployment>-<16 hex of sha256(groupKey, namespace, deployment)>``, a DNS-1123 name of at
most 63 characters, with the full identity in the label ``mitigator.luminamind.io/alert-group``.
From the second episode of a group on (see `mitigator.bridge.episodes`), ``-<episode>``
follows, with the number in the label ``mitigator.luminamind.io/alert-episode``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from mitigator import API_GROUP
from mitigator.models import SourceType

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "mitigator-bridge"
LABEL_SOURCE = f"{API_GROUP}/source"
LABEL_GROUP = f"{API_GROUP}/alert-group"
LABEL_EPISODE = f"{API_GROUP}/alert-episode"
LABEL_ALERTNAME = f"{API_GROUP}/alertname"
ANNOTATION_ALERTMANAGER = f"{API_GROUP}/alertmanager-url"

MAX_EPISODE = 9999
# <prefix>-<16 hex>[-<episode up to MAX_EPISODE>] stays within 63 characters.
_NAME_PREFIX_LENGTH = 40
_NAME_HASH_LENGTH = 16
_GROUP_LABEL_LENGTH = 40
_MAX_ANNOTATION_URL = 2048
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def group_hash(group_key: str, namespace: str, deployment: str) -> str:
    """The hex sha256 of what identifies an Incident made from alerts."""
    identity = "\n".join((group_key, namespace, deployment))
    return hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()


def group_label(digest: str) -> str:
    """The value of LABEL_GROUP on the Incidents of the group with this `group_hash`."""
    return digest[:_GROUP_LABEL_LENGTH]


def incident_name(deployment: str, digest: str, episode: int = 1) -> str:
    """``<deployment, cut to 40>-<16 hex>``, then ``-<episode>`` from the second episode on."""
    prefix = deployment[:_NAME_PREFIX_LENGTH].rstrip("-.")
    name = f"{prefix}-{digest[:_NAME_HASH_LENGTH]}"
    return name if episode <= 1 else f"{name}-{episode}"


def is_label_value(value: str) -> bool:
    return len(value) <= 63 and _LABEL_VALUE.fullmatch(value) is not None


def incident_labels(digest: str, episode: int, alertname: str | None) -> dict[str, str]:
    """The labels of an Incident the bridge creates: who made it, for which group, which
    episode, and the alert's name when it is a valid label value."""
    labels = {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_SOURCE: SourceType.ALERTMANAGER.value,
        LABEL_GROUP: group_label(digest),
        LABEL_EPISODE: str(episode),
    }
    if alertname and is_label_value(alertname):
        labels[LABEL_ALERTNAME] = alertname
    return labels


def incident_annotations(external_url: str) -> dict[str, str]:
    """Where the alerts came from (Alertmanager's external URL), when it fits."""
    if external_url and len(external_url) <= _MAX_ANNOTATION_URL:
        return {ANNOTATION_ALERTMANAGER: external_url}
    return {}


def episode_of(labels: Mapping[str, Any]) -> int:
    """The episode an Incident's labels give (1 when absent or unreadable)."""
    try:
        return int(labels.get(LABEL_EPISODE, "1"))
    except ValueError:
        return 1
