"""What an Incident made from alerts is called and how it is labelled: deterministic, distinct
per (group, namespace, Deployment), a valid name of at most 63 characters."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mitigator.bridge.identity import (
    ANNOTATION_ALERTMANAGER,
    LABEL_ALERTNAME,
    LABEL_EPISODE,
    LABEL_GROUP,
    group_hash,
    incident_annotations,
    incident_labels,
    incident_name,
)
from mitigator.models.common import DNS1123_SUBDOMAIN_PATTERN

NAME = re.compile(DNS1123_SUBDOMAIN_PATTERN)


def test_names_are_deterministic_and_distinct() -> None:
    digest = group_hash("{}:{a=b}", "prod", "web")
    assert incident_name("web", digest) == incident_name(
        "web", group_hash("{}:{a=b}", "prod", "web")
    )
    assert re.fullmatch(r"web-[0-9a-f]{16}", incident_name("web", digest))
    others = {
        incident_name("web", group_hash("{}:{a=c}", "prod", "web")),
        incident_name("web", group_hash("{}:{a=b}", "staging", "web")),
        incident_name("web", group_hash("{}:{a=b}", "prod", "web2")),
        incident_name("web", digest),
    }
    assert len(others) == 4
    assert incident_name("web", digest, 2) == incident_name("web", digest) + "-2"


@pytest.mark.parametrize(
    "deployment", ["a", "web", "x" * 253, "a" * 39 + "-b" * 30, "api.v2.example", "a" * 39 + ".b"]
)
def test_names_fit_in_63_characters(deployment: str) -> None:
    for episode in (1, 2, 9999):
        name = incident_name(deployment, group_hash("k", "ns", deployment), episode)
        assert len(name) <= 63
        assert NAME.fullmatch(name), name


deployments = st.from_regex(
    r"[a-z0-9]([-a-z0-9]{0,60}[a-z0-9])?(\.[a-z0-9]{1,20}){0,3}", fullmatch=True
)


@given(deployments, st.text(min_size=1, max_size=200), st.integers(min_value=1, max_value=9999))
def test_any_deployment_gives_a_valid_name(deployment: str, key: str, episode: int) -> None:
    name = incident_name(deployment, group_hash(key, "ns", deployment), episode)
    assert len(name) <= 63 and NAME.fullmatch(name), name


def test_labels_and_annotations() -> None:
    digest = group_hash("k", "prod", "web")
    labels = incident_labels(digest, 3, "HighErrorRate")
    assert labels[LABEL_GROUP] == digest[:40]
    assert labels[LABEL_EPISODE] == "3"
    assert labels[LABEL_ALERTNAME] == "HighErrorRate"
    assert LABEL_ALERTNAME not in incident_labels(digest, 1, "job:errors:rate5m > 5%")
    assert LABEL_ALERTNAME not in incident_labels(digest, 1, None)
    assert incident_annotations("http://am:9093") == {ANNOTATION_ALERTMANAGER: "http://am:9093"}
    assert incident_annotations("") == {}
    assert incident_annotations("http://am/" + "x" * 2048) == {}  # too long to annotate
