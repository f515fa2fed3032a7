"""Group commit of the alert groups of one target: the requests that arrive for a target while
it is being written wait their turn together, and the next write carries all of them
(`upsert_batch`), instead of one write (and its reads, and its conflicts with the
operator's status writes) each. A storm of 200 groups for one Deployment costs a handful of
writes of its Incident.

Runs on the bridge's event loop: the queues need no lock, and a waiting request holds no
thread. One writer per target at a time, in the bridge's thread pool. Each request is answered
once the write that carried its alerts succeeded, never before; when it failed, every request
it carried gets the failure (503, and Alertmanager retries)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import Executor
from functools import partial

from mitigator.bridge.failures import ApiFailure
from mitigator.bridge.grouping import TargetAlerts
from mitigator.bridge.upsert import Answered, TargetResult, Upserter
from mitigator.bridge.upsert_batch import upsert_batch

TargetKey = tuple[str, str]
_Future = asyncio.Future[TargetResult]
_Waiting = tuple[TargetAlerts, _Future]


class GroupCommits:
    def __init__(self, upserter: Upserter, executor: Executor) -> None:
        self.upserter = upserter
        self._executor = executor
        self._queues: dict[TargetKey, list[_Waiting]] = {}
        self._writers: dict[TargetKey, asyncio.Task[None]] = {}

    async def submit(self, target: TargetAlerts) -> TargetResult:
        """`target`'s alerts written with whatever else waits for its Deployment; raises the
        `ApiFailure` of the write that was to carry them."""
        loop = asyncio.get_running_loop()
        future: _Future = loop.create_future()
        self._queues.setdefault(target.key, []).append((target, future))
        if target.key not in self._writers:
            self._writers[target.key] = loop.create_task(self._write(target.key))
        return await future

    async def _write(self, key: TargetKey) -> None:
        """Write what waits for `key` until nothing does."""
        loop = asyncio.get_running_loop()
        try:
            while waiting := self._queues.pop(key, None):
                futures = [future for _, future in waiting]
                targets = [target for target, _ in waiting]
                answer = partial(_answer, loop, futures)
                try:
                    write = partial(upsert_batch, self.upserter, targets, answer)
                    await loop.run_in_executor(self._executor, write)
                except asyncio.CancelledError:
                    _fail(futures, ApiFailure("the bridge is stopping"))
                    raise
                except Exception as exc:  # a bug: every request it carried raises it
                    _fail(futures, exc)
        finally:
            del self._writers[key]
            _fail(
                [future for _, future in self._queues.pop(key, [])],
                ApiFailure("the bridge is stopping"),
            )


def _answer(
    loop: asyncio.AbstractEventLoop, futures: Sequence[_Future], index: int, result: Answered
) -> None:
    """From the writer's thread: the request `index` is answered (on the loop)."""
    loop.call_soon_threadsafe(_settle, futures[index], result)


def _settle(future: _Future, result: Answered) -> None:
    if future.done():  # the request went away (its client disconnected)
        return
    if isinstance(result, ApiFailure):
        future.set_exception(result)
    else:
        future.set_result(result)


def _fail(futures: Sequence[_Future], failure: Exception) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(failure)
