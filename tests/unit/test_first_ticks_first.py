"""kopf's handler pool takes a new Incident's first ticks before the others' re-checks, gives
the rest one pick in every few while new ones keep coming, loses no work, and still shuts down."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import kopf
import pytest
from kopf._core.actions.invocation import invoke

from mitigator import API_GROUP, API_VERSION, INCIDENT_PLURAL, POLICY_PLURAL
from mitigator.handlers.first_ticks_first import FirstTicksFirst, untriaged_incident_tick

INCIDENTS = kopf.Resource(API_GROUP, API_VERSION, INCIDENT_PLURAL)
POLICIES = kopf.Resource(API_GROUP, API_VERSION, POLICY_PLURAL)


def _hold(pool: FirstTicksFirst) -> threading.Event:
    """Occupy the pool's one worker until the returned event is set (returns once it is)."""
    held, release = threading.Event(), threading.Event()

    def occupy() -> None:
        held.set()
        release.wait(timeout=30)

    pool.submit(occupy)
    assert held.wait(timeout=10)
    return release


def _run_in_order(pool: FirstTicksFirst, names: list[str]) -> list[str]:
    """Queue `names` behind a task that holds the pool's one worker, then let them run."""
    order: list[str] = []
    release = _hold(pool)
    futures = [pool.submit(order.append, name) for name in names]
    release.set()
    for future in futures:
        future.result(timeout=10)
    return order


def test_urgent_work_goes_first_and_the_rest_gets_one_pick_in_every_fair_share() -> None:
    decided: list[str] = []

    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

        def __call__(self) -> None:
            decided.append(self.name)

    pool = FirstTicksFirst(
        1, urgent=lambda fn: isinstance(fn, Named) and fn.name.startswith("new"), fair_share=3
    )
    release = _hold(pool)
    names = ["old-1", "old-2", "new-1", "new-2", "new-3", "new-4", "new-5", "old-3"]
    futures = [pool.submit(Named(name)) for name in names]
    release.set()
    for future in futures:
        future.result(timeout=10)
    pool.shutdown()
    # Two urgent, then the oldest of the rest, and so on; the rest keeps its order.
    assert decided == ["new-1", "new-2", "old-1", "new-3", "new-4", "old-2", "new-5", "old-3"]


def test_without_urgent_work_the_order_is_kept_and_shutdown_runs_what_was_queued() -> None:
    pool = FirstTicksFirst(1, urgent=lambda fn: False)
    assert _run_in_order(pool, ["a", "b", "c"]) == ["a", "b", "c"]
    done = [pool.submit(sum, [1, 2]) for _ in range(5)]
    pool.shutdown(wait=True)
    assert [future.result() for future in done] == [3] * 5


def test_an_urgency_that_fails_queues_the_work_as_the_rest() -> None:
    def broken(fn: Any) -> bool:
        raise KeyError("status")

    pool = FirstTicksFirst(2, urgent=broken)
    assert pool.submit(sum, [2, 2]).result(timeout=10) == 4
    pool.shutdown()


def _queued_as_kopf_queues_it(resource: kopf.Resource, status: dict[str, Any]) -> bool:
    """Run a sync handler through kopf's own invocation with this pool, and say whether the
    pool found it urgent."""
    seen: list[bool] = []

    def urgent(fn: Any) -> bool:
        seen.append(untriaged_incident_tick(fn))
        return seen[-1]

    pool = FirstTicksFirst(2, urgent=urgent)
    settings = kopf.OperatorSettings()
    settings.execution.executor = pool

    def handler(**_: Any) -> str:
        return "ticked"

    body = kopf.Body({"metadata": {}, "spec": {}, "status": status})
    kwargs = {"resource": resource, "status": body.status, "spec": body.spec}
    result = asyncio.run(invoke(handler, settings=settings, kwargs=kwargs))
    pool.shutdown()
    assert result == "ticked"
    [decision] = seen
    return decision


@pytest.mark.parametrize(
    ("resource", "status", "urgent"),
    [
        (INCIDENTS, {}, True),  # just created
        (INCIDENTS, {"phase": "Triaging"}, True),  # e.g. waiting for its target
        (INCIDENTS, {"phase": "Mitigating"}, False),
        (INCIDENTS, {"phase": "Verifying"}, False),
        (INCIDENTS, {"phase": "Escalated"}, False),
        (POLICIES, {}, False),
    ],
)
def test_a_new_incidents_tick_is_urgent_as_kopf_queues_it(
    resource: kopf.Resource, status: dict[str, Any], urgent: bool
) -> None:
    assert _queued_as_kopf_queues_it(resource, status) is urgent


def test_each_work_says_how_long_it_waited_and_whether_it_went_first() -> None:
    told: list[tuple[bool, float]] = []

    def waited(*, first_tick: bool, seconds: float) -> None:
        told.append((first_tick, seconds))

    pool = FirstTicksFirst(1, urgent=lambda fn: fn is max, waited=waited)
    release = _hold(pool)
    queued = [pool.submit(min, [1, 2]), pool.submit(max, [1, 2])]
    release.set()
    assert [future.result(timeout=10) for future in queued] == [1, 2]
    pool.shutdown()
    # The holder, then the urgent one (queued second, taken first), then the other.
    assert [first for first, _ in told] == [False, True, False]
    assert all(seconds >= 0 for _, seconds in told)
