"""How the incident commands print: readable (and coloured on a terminal) for people, plain
when piped, JSON or YAML for programs."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

import yaml

_COLOURS = {"bold": "1", "red": "31", "green": "32", "yellow": "33", "dim": "2", "cyan": "36"}
# The colour a phase or severity is shown in (anything else: plain).
_TONE = {
    "Resolved": "green",
    "Mitigating": "yellow",
    "Verifying": "yellow",
    "Triaging": "yellow",
    "AwaitingApproval": "cyan",
    "Escalated": "red",
    "Failed": "red",
    "P0": "red",
    "P1": "red",
    "P2": "yellow",
}


@dataclass(frozen=True)
class Style:
    colour: bool

    @classmethod
    def for_stream(cls, stream: TextIO) -> Style:
        """Colour on a terminal, unless NO_COLOR asks otherwise (https://no-color.org)."""
        return cls(colour=stream.isatty() and not os.environ.get("NO_COLOR"))

    def paint(self, text: str, colour: str) -> str:
        if not self.colour or colour not in _COLOURS:
            return text
        return f"\033[{_COLOURS[colour]}m{text}\033[0m"

    def bold(self, text: str) -> str:
        return self.paint(text, "bold")

    def tone(self, text: str) -> str:
        """A phase or severity in the colour it stands for."""
        return self.paint(text, _TONE.get(text, ""))


def table(rows: Sequence[Sequence[str]], *, style: Style, header: Sequence[str]) -> str:
    """Columns padded like kubectl's; the header bold. Widths count the text, not colours."""
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["   ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines[0] = style.bold(lines[0])
    for row in rows:
        cells = [
            style.tone(cell) + " " * (w - len(cell)) for cell, w in zip(row, widths, strict=True)
        ]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)


def dump(data: Any, fmt: str, stream: TextIO = sys.stdout) -> None:
    if fmt == "json":
        stream.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    else:
        stream.write(yaml.safe_dump(data, sort_keys=False))


def age(since: datetime | None, now: datetime) -> str:
    """kubectl's short ages: 45s, 12m, 3h, 2d."""
    if since is None:
        return "-"
    return short_duration((now - since).total_seconds())


def short_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"
