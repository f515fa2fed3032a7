"""The test clock for the shipped alert rules changes durations and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from localkube.rules import compress_rules

RULES = Path(__file__).resolve().parents[2] / "manifests" / "prometheus-rules.yaml"
_DURATION = re.compile(r"\[\d+[smh]\]")


def _rules(text: str) -> list[dict[str, object]]:
    return [rule for group in yaml.safe_load(text)["groups"] for rule in group["rules"]]


def test_compression_changes_only_durations() -> None:
    original, compressed = _rules(RULES.read_text()), _rules(compress_rules(RULES.read_text()))
    assert len(original) == len(compressed) > 0
    for before, after in zip(original, compressed, strict=True):
        assert {k: v for k, v in before.items() if k not in ("expr", "for")} == {
            k: v for k, v in after.items() if k not in ("expr", "for")
        }
        assert _DURATION.sub("[]", str(before["expr"])) == _DURATION.sub("[]", str(after["expr"]))
        if "for" in before:
            assert after["for"] != before["for"] or before["for"] == "0s"
