"""``_time_limits.TimeLimits``: one timer for every running handler's limit, no broker needed."""

from __future__ import annotations

import asyncio
import time

from eventbus._time_limits import TimeLimits


async def _limited(limits: TimeLimits, seconds: float, work: float, *, swallow: bool = False) -> str:
    task = asyncio.current_task()
    assert task is not None
    token = limits.start(task, seconds)
    try:
        try:
            await asyncio.sleep(work)
        except asyncio.CancelledError:
            if not swallow:
                raise
    except asyncio.CancelledError:
        if limits.finish(task, token):
            return "time up"
        raise
    limits.finish(task, token)
    return "done"


async def test_only_handlers_past_their_limit_are_cancelled() -> None:
    limits = TimeLimits(asyncio.get_running_loop(), resolution=0.02)
    started = time.monotonic()
    results = await asyncio.gather(
        _limited(limits, 0.1, 5), _limited(limits, 1.0, 0.05), _limited(limits, 0.2, 5), _limited(limits, 5, 0)
    )
    elapsed = time.monotonic() - started
    assert results == ["time up", "done", "time up", "done"]
    assert 0.2 <= elapsed < 2  # the longer limit held, the 5 s sleeps did not run out
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    limits.close()


async def test_a_cancellation_from_elsewhere_is_not_a_time_limit() -> None:
    limits = TimeLimits(asyncio.get_running_loop(), resolution=0.02)
    task = asyncio.ensure_future(_limited(limits, 0.05, 5))
    await asyncio.sleep(0)
    task.cancel()  # shutdown, before the limit: must stay a cancellation
    try:
        await task
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the cancellation was swallowed")
    assert not limits._deadlines and not limits._expired
    limits.close()


async def test_a_handler_that_swallows_the_cancellation_leaves_its_task_uncancelled() -> None:
    limits = TimeLimits(asyncio.get_running_loop(), resolution=0.02)
    task = asyncio.ensure_future(_limited(limits, 0.05, 0.5, swallow=True))
    assert await task == "done"
    assert task.cancelling() == 0
    assert not limits._deadlines and not limits._expired
    limits.close()
