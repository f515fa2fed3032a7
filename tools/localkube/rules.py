"""The shipped alert rules, on a compressed clock for tests and the demo.

manifests/prometheus-rules.yaml is written for production: 5m rate windows, `for: 2m`. A test
cannot wait ten minutes per scenario, so the harness loads the same file with every duration
divided down (rate windows to 20s, `for:` to a few seconds) and nothing else changed: the same
alerts, expressions, labels and annotations. `compress_rules` is that one transformation, and
tests/unit/test_rules_clock.py checks that it changes durations only.
"""

from __future__ import annotations

import re
from pathlib import Path

# Production duration → test duration. Rate windows keep >= 20 scrapes at the 1s interval.
WINDOWS = {"5m": "20s", "2m": "15s", "1m": "10s"}
PENDING = {"5m": "10s", "2m": "8s", "1m": "5s", "30s": "3s"}

_WINDOW = re.compile(r"\[(\d+[smh])\]")
_FOR = re.compile(r"^(\s*for:\s*)(\S+)\s*$", re.M)


def compress_rules(text: str) -> str:
    text = _WINDOW.sub(lambda m: f"[{WINDOWS.get(m.group(1), m.group(1))}]", text)
    return _FOR.sub(lambda m: f"{m.group(1)}{PENDING.get(m.group(2), m.group(2))}", text)


def compressed_rules_file(source: Path, destination: Path) -> Path:
    destination.write_text(compress_rules(source.read_text()))
    return destination
