"""Render the e2e scenarios' timings (JSON lines from MITIGATOR_FIGURES_FILE) as
docs/scenarios.md. Run by `make bench`; figures are recorded, never asserted."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path


def _seconds(value: float | None) -> str:
    """A figure, or a dash when there is none (no action applied, or never resolved)."""
    return "—" if value is None else str(value)


def main(source: str, destination: str) -> int:
    rows = [json.loads(line) for line in Path(source).read_text().splitlines() if line.strip()]
    lines = [
        "# Closed-loop scenarios: time from alert to action and to resolution",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({platform.machine()}, {os.cpu_count()} cores) by `make bench`, "
        "with the shipped alert rules on the test clock (`localkube.rules`: rate windows 20s, "
        "`for:` 8-10s), the demo policy (15s rate windows, 10s verification window), scrape "
        "and evaluation every 1s, Alertmanager group_wait 1s. Time starts when the Incident is "
        "detected (the bridge created it from the firing alert).",
        "",
        "| scenario | final phase | alert → first action (s) | alert → resolution (s) |",
        "|---|---|---|---|",
    ]
    for row in rows:
        action, resolution = row["alert_to_first_action_s"], row["alert_to_resolution_s"]
        lines.append(
            f"| {row['scenario']} | {row['phase']} | {_seconds(action)} | {_seconds(resolution)} |"
        )
    Path(destination).write_text("\n".join(lines) + "\n")
    print(Path(destination).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
