"""The heap gauges a leak check reads: they follow what is allocated, not the resident size."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from prometheus_client import generate_latest

from mitigator.observability.metrics import REGISTRY

# Measured in a fresh interpreter: in the suite's own process other threads (the in-process
# operator of the cluster tests, their watches) allocate and free at the same time, and an
# allocation here could start a garbage collection of earlier tests' objects. A CI run
# measured a 64 MiB buffer as 14 KiB short of 64 MiB that way.
_MEASURE = """
import gc, json
from mitigator.observability.heap import HeapCollector, malloc_in_use_bytes

def blocks():
    (family,) = [f for f in HeapCollector().collect() if f.name.endswith("allocated_blocks")]
    return float(family.samples[0].value)

gc.collect()
gc.disable()
figures = {"blocks_before": blocks()}
kept = [{"n": n} for n in range(50_000)]
figures["blocks_during"] = blocks()
del kept
figures["blocks_after"] = blocks()
figures["malloc_before"] = malloc_in_use_bytes()
buffer = bytearray(64 * 2**20)
figures["malloc_during"] = malloc_in_use_bytes()
del buffer
figures["malloc_after"] = malloc_in_use_bytes()
print(json.dumps(figures))
"""


def _measured() -> dict[str, float | None]:
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        timeout=60,
    )
    figures: dict[str, float | None] = json.loads(done.stdout)
    return figures


def test_allocated_blocks_count_live_objects_and_drop_when_they_are_freed() -> None:
    figures = _measured()
    before, during, after = (figures[f"blocks_{k}"] for k in ("before", "during", "after"))
    assert before is not None and during is not None and after is not None
    assert during - before >= 50_000
    assert after - before < 5_000


def test_malloc_in_use_counts_a_large_allocation_until_it_is_freed() -> None:
    figures = _measured()
    before, during, after = (figures[f"malloc_{k}"] for k in ("before", "during", "after"))
    assert before is not None, "glibc 2.33+ has mallinfo2"
    assert during is not None and after is not None
    assert during - before >= 64 * 2**20
    assert after - before < 8 * 2**20


def test_the_operator_serves_them_on_metrics() -> None:
    text = generate_latest(REGISTRY).decode()
    assert "mitigator_python_allocated_blocks " in text
    assert "mitigator_malloc_in_use_bytes " in text
