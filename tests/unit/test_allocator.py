"""The operator gives freed memory back to the system periodically (glibc's malloc_trim), and
stops when cancelled; the memory effect itself is shown by tests/faults/test_storms.py."""

from __future__ import annotations

import asyncio
import platform

import pytest

from mitigator.observability import allocator


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_the_trim_runs_periodically_until_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    trim = allocator._malloc_trim()
    assert trim is not None
    calls: list[int] = []

    def counted(pad: int) -> int:
        calls.append(pad)
        return trim(pad)

    monkeypatch.setattr(allocator, "_malloc_trim", lambda: counted)

    async def run() -> None:
        task = asyncio.create_task(allocator.trim_periodically(0.01))
        while len(calls) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert calls[:3] == [0, 0, 0]
