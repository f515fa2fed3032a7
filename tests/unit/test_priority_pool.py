"""The handler pool that runs an Incident's first tick before follow-up ticks (priority.py),
and which ticks count as first."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError

import kopf
import pytest

from mitigator.handlers.incidents import FOLLOW_UP, tick_priority
from mitigator.handlers.priority import URGENT, PriorityExecutor

WAIT = 30.0  # generous: only a broken pool ever waits this long


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pool(clock: Clock) -> Iterator[PriorityExecutor]:
    executor = PriorityExecutor(1, age_step=10.0, clock=clock)
    yield executor
    executor.shutdown(wait=True, cancel_futures=True)


def hold(pool: PriorityExecutor) -> threading.Event:
    """Keep the pool's one thread busy until the returned event is set, so that what is
    submitted next queues up."""
    started, release = threading.Event(), threading.Event()

    def blocker() -> None:
        started.set()
        assert release.wait(WAIT)

    pool.submit(blocker)
    assert started.wait(WAIT)
    return release


def run_queued(
    pool: PriorityExecutor, clock: Clock, work: list[tuple[float, int, str]]
) -> list[str]:
    """Submit (at time, priority, name) items behind a held thread, release it, and return
    the order they ran in."""
    ran: list[str] = []
    release = hold(pool)

    def note(name: str) -> Callable[[], None]:
        return lambda: ran.append(name)

    futures = []
    for at, priority, name in work:
        clock.now = at
        futures.append(pool.submit_at(priority, note(name)))
    release.set()
    for future in futures:
        future.result(WAIT)
    return ran


def test_urgent_work_runs_before_follow_ups(pool: PriorityExecutor, clock: Clock) -> None:
    order = run_queued(
        pool,
        clock,
        [(100, 1, "verify-a"), (100, 0, "first-b"), (101, 1, "verify-c"), (102, 0, "first-d")],
    )
    assert order == ["first-b", "first-d", "verify-a", "verify-c"]


def test_first_in_first_out_within_a_priority(pool: PriorityExecutor, clock: Clock) -> None:
    names = [f"w{i}" for i in range(20)]
    # Same instant for all: the submission order decides.
    assert run_queued(pool, clock, [(100, 0, name) for name in names]) == names
    assert run_queued(pool, clock, [(100, 1, name) for name in names]) == names


def test_a_follow_up_is_not_overtaken_once_it_has_waited_its_handicap(
    pool: PriorityExecutor, clock: Clock
) -> None:
    # Priority 1 counts for 10 s: urgent work submitted within 10 s goes first, urgent work
    # submitted later waits behind it, however much of it keeps coming.
    order = run_queued(
        pool,
        clock,
        [
            (100, 1, "verify"),
            (109, 0, "first-within-10s"),
            (111, 0, "first-after-10s"),
            (112, 0, "another-after"),
        ],
    )
    assert order == ["first-within-10s", "verify", "first-after-10s", "another-after"]


def test_a_handler_error_reaches_its_caller_and_the_thread_goes_on(
    pool: PriorityExecutor,
) -> None:
    def fail() -> None:
        raise kopf.TemporaryError("try later", delay=2)

    with pytest.raises(kopf.TemporaryError, match="try later"):
        pool.submit_at(FOLLOW_UP, fail).result(WAIT)
    assert pool.submit(lambda: 42).result(WAIT) == 42


def test_no_more_threads_than_workers(clock: Clock) -> None:
    executor = PriorityExecutor(2, clock=clock, name="bounded")
    running, peak = 0, 0
    lock, release = threading.Lock(), threading.Event()
    both = threading.Barrier(2)

    def work() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        both.wait(WAIT)  # two run at once...
        assert release.wait(WAIT)
        with lock:
            running -= 1

    futures = [executor.submit(work) for _ in range(6)]
    release.set()
    for future in futures:
        future.result(WAIT)
    executor.shutdown(wait=True)
    assert peak == 2  # ...and never more
    assert not [t for t in threading.enumerate() if t.name.startswith("bounded-")]


def test_kopf_sets_its_size_and_runs_sync_handlers_in_it_with_their_context() -> None:
    executor = PriorityExecutor(4)
    settings = kopf.OperatorSettings()
    settings.execution.executor = executor
    settings.execution.max_workers = 3  # kopf's setter writes the pool's limit
    assert executor._max_workers == 3
    where: contextvars.ContextVar[str] = contextvars.ContextVar("where")

    async def main() -> str:
        where.set("the handler's task")
        context = contextvars.copy_context()  # as kopf does for a sync handler
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, context.run, where.get)

    assert asyncio.run(main()) == "the handler's task"
    executor.shutdown(wait=True)


def test_shutdown_runs_what_is_queued_then_refuses_new_work(
    pool: PriorityExecutor,
) -> None:
    release = hold(pool)
    queued = pool.submit_at(FOLLOW_UP, lambda: "done")
    release.set()
    pool.shutdown(wait=True)
    assert queued.result(WAIT) == "done"
    with pytest.raises(RuntimeError, match="shutdown"):
        pool.submit(lambda: None)


def test_shutdown_can_cancel_what_is_queued(pool: PriorityExecutor) -> None:
    release = hold(pool)
    queued = pool.submit(lambda: "never")
    pool.shutdown(wait=False, cancel_futures=True)
    release.set()
    with pytest.raises(CancelledError):
        queued.result(WAIT)


def test_a_handler_may_shut_its_own_pool_down(pool: PriorityExecutor) -> None:
    # kopf runs the cleanup handler in the pool it closes: it must not wait for itself.
    pool.submit(pool.shutdown, wait=True).result(WAIT)
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)


def test_negative_priorities_and_empty_pools_are_refused() -> None:
    with pytest.raises(ValueError, match="max_workers"):
        PriorityExecutor(0)
    executor = PriorityExecutor(1)
    with pytest.raises(ValueError, match="priority"):
        executor.submit_at(-1, lambda: None)
    executor.shutdown()


# ------------------------------------------------------------------ which tick is urgent


def status(phase: str | None, *states: str) -> dict[str, object]:
    actions = [{"id": f"s{i}", "state": state} for i, state in enumerate(states)]
    return {"actions": actions} if phase is None else {"phase": phase, "actions": actions}


@pytest.mark.parametrize(
    "phase,states",
    [
        (None, ()),  # just created
        ("Triaging", ()),
        ("Mitigating", ("Pending",)),  # recorded, about to act
        ("Mitigating", ("Refused", "Pending")),  # waiting for the target's claim or a slot
        ("AwaitingApproval", ("Pending",)),
    ],
)
def test_ticks_before_the_first_action_are_urgent(
    phase: str | None, states: tuple[str, ...]
) -> None:
    assert tick_priority(status(phase, *states)) == URGENT


@pytest.mark.parametrize(
    "phase,states",
    [
        ("Verifying", ("Applied",)),
        ("Verifying", ("DryRun",)),  # a dry run has recorded what it would do
        ("Mitigating", ("Applied", "Pending")),  # a next step after verification failed
        ("Escalated", ("Applied", "Failed")),  # a person resolves: reverts follow
    ],
)
def test_ticks_after_it_follow(phase: str, states: tuple[str, ...]) -> None:
    assert tick_priority(status(phase, *states)) == FOLLOW_UP
