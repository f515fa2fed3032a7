"""The heap gauges a leak check reads: they follow what is allocated, not the resident size."""

from __future__ import annotations

from prometheus_client import generate_latest

from mitigator.observability.heap import HeapCollector, malloc_in_use_bytes
from mitigator.observability.metrics import REGISTRY


def _blocks() -> float:
    (family,) = [f for f in HeapCollector().collect() if f.name.endswith("allocated_blocks")]
    return float(family.samples[0].value)


def test_allocated_blocks_count_live_objects_and_drop_when_they_are_freed() -> None:
    before = _blocks()
    kept = [{"n": n} for n in range(50_000)]
    during = _blocks()
    del kept
    after = _blocks()
    assert during - before >= 50_000
    assert after - before < 5_000


def test_malloc_in_use_counts_a_large_allocation_until_it_is_freed() -> None:
    before = malloc_in_use_bytes()
    assert before is not None, "glibc 2.33+ has mallinfo2"
    buffer = bytearray(64 * 2**20)
    during = malloc_in_use_bytes()
    del buffer
    after = malloc_in_use_bytes()
    assert during is not None and after is not None
    assert during - before >= 64 * 2**20
    assert after - before < 8 * 2**20


def test_the_operator_serves_them_on_metrics() -> None:
    text = generate_latest(REGISTRY).decode()
    assert "mitigator_python_allocated_blocks " in text
    assert "mitigator_malloc_in_use_bytes " in text
