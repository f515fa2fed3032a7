"""A tick waits for its own last write to show in the stored status, but not forever: a store
that lost the write (an etcd restore) must not freeze the Incident."""

from __future__ import annotations

from typing import Any

from mitigator.handlers.freshness import Freshness, freshness


def test_a_stored_status_that_includes_the_last_write_is_fresh() -> None:
    memo: dict[str, Any] = {"sequence": 3}
    assert freshness(memo, stored=3, now=0.0) is Freshness.FRESH
    assert freshness({}, stored=0, now=0.0) is Freshness.FRESH


def test_behind_the_last_write_waits_then_takes_the_store_as_the_truth() -> None:
    memo: dict[str, Any] = {"sequence": 5}
    assert freshness(memo, stored=4, now=100.0, lost_after=15) is Freshness.BEHIND
    assert freshness(memo, stored=4, now=114.0, lost_after=15) is Freshness.BEHIND
    assert freshness(memo, stored=0, now=115.0, lost_after=15) is Freshness.LOST
    # From now on the stored status is the reference: the next write follows it.
    assert memo == {"sequence": 0}
    assert freshness(memo, stored=0, now=116.0, lost_after=15) is Freshness.FRESH


def test_the_wait_starts_again_once_the_write_has_shown() -> None:
    memo: dict[str, Any] = {"sequence": 5}
    assert freshness(memo, stored=4, now=100.0, lost_after=15) is Freshness.BEHIND
    assert freshness(memo, stored=5, now=101.0, lost_after=15) is Freshness.FRESH
    memo["sequence"] = 6
    # A later write that is slow to show is given the whole wait again.
    assert freshness(memo, stored=5, now=114.0, lost_after=15) is Freshness.BEHIND
    assert freshness(memo, stored=5, now=128.0, lost_after=15) is Freshness.BEHIND
    assert freshness(memo, stored=5, now=129.0, lost_after=15) is Freshness.LOST
