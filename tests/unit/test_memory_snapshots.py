"""The diagnosis hook (MITIGATOR_DEBUG_SNAPSHOTS): off unless asked; a snapshot says where
the resident memory is and what the allocators hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mitigator.observability import memory_snapshots


def test_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(memory_snapshots.ENVIRONMENT, raising=False)
    assert memory_snapshots.install() is False


def test_a_snapshot_records_the_sizes_and_the_live_objects(tmp_path: Path) -> None:
    summary = memory_snapshots.take(tmp_path, 0)
    (line,) = (tmp_path / "index.jsonl").read_text().splitlines()
    assert json.loads(line) == summary
    resident = summary["resident"]
    assert isinstance(resident, dict) and resident["file"] > 0
    assert "dict" in summary["types"]  # type: ignore[operator]
    assert "arenas allocated current" in (tmp_path / "0.mallocstats").read_text()
