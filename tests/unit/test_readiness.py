"""kopf's start-up readiness wait, shared: as correct as kopf's own, and linear."""

from __future__ import annotations

import asyncio

from kopf._cogs.aiokits import aiotoggles

from mitigator.handlers.readiness import make_readiness_wait_linear


def _counting_set() -> tuple[aiotoggles.ToggleSet, list[int]]:
    checks = [0]

    def every(states: object) -> bool:
        checks[0] += 1
        return all(states)  # type: ignore[call-overload]

    return aiotoggles.ToggleSet(every), checks


def test_waiters_are_released_once_every_toggle_is_dropped() -> None:
    assert make_readiness_wait_linear()

    async def scenario() -> None:
        toggles, _ = _counting_set()
        first = await toggles.make_toggle()
        second = await toggles.make_toggle()
        waiters = [asyncio.create_task(toggles.wait_for(True)) for _ in range(3)]
        await asyncio.sleep(0)
        await toggles.drop_toggle(first)
        await asyncio.sleep(0)
        assert not any(w.done() for w in waiters)
        # One waiter given up (its object deleted) must not release or break the others.
        waiters[0].cancel()
        await toggles.drop_toggle(second)
        await asyncio.wait_for(asyncio.gather(*waiters[1:]), timeout=10)
        assert waiters[0].cancelled()
        # Once on, a wait returns at once; a new toggle turns the set off again.
        await asyncio.wait_for(toggles.wait_for(True), timeout=10)
        third = await toggles.make_toggle()
        later = asyncio.create_task(toggles.wait_for(True))
        await asyncio.sleep(0)
        assert not later.done()
        await toggles.drop_toggle(third)
        await asyncio.wait_for(later, timeout=10)

    asyncio.run(scenario())


def test_each_change_is_checked_once_not_once_per_waiter() -> None:
    """The stall at start-up: N objects each adding and dropping a toggle while the
    previous ones wait made kopf re-check the set N x N times."""
    assert make_readiness_wait_linear()
    objects = 2000

    async def scenario() -> int:
        toggles, checks = _counting_set()
        blocker = await toggles.make_toggle()
        waiters = []
        for _ in range(objects):
            mine = await toggles.make_toggle()
            await toggles.drop_toggle(mine)
            waiters.append(asyncio.create_task(toggles.wait_for(True)))
            await asyncio.sleep(0)
        await toggles.drop_toggle(blocker)
        await asyncio.wait_for(asyncio.gather(*waiters), timeout=60)
        return checks[0]

    assert asyncio.run(scenario()) < 10 * objects
