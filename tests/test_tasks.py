"""Shutdown cancels tasks for certain, even when asyncio swallows a cancellation.

On CPython 3.11 `asyncio.wait_for` returns normally when the cancel arrives just as the
awaited future completes (gh-86296). aiosmtplib waits like that for every SMTP reply, so
stopping the notifier right after an email went out could hang on the queue task; CI hit
it. These tests build that race with the real `asyncio.wait_for`.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest

from agent.support.tasks import cancel_and_wait

pytestmark = pytest.mark.timeout(20)


async def _swallowing_task() -> tuple[asyncio.Task[None], asyncio.Event]:
    """A task whose cancel lands as its wait_for's future completes, then waits for ever."""
    loop = asyncio.get_running_loop()
    reply: asyncio.Future[int] = loop.create_future()
    never = asyncio.Event()
    reached_wait = asyncio.Event()

    async def worker() -> None:
        await asyncio.wait_for(reply, timeout=10)
        reached_wait.set()
        await never.wait()

    task = asyncio.create_task(worker(), name="worker")
    await asyncio.sleep(0)  # the worker is now inside wait_for
    reply.set_result(250)
    task.cancel()
    return task, reached_wait


async def test_cancel_and_wait_stops_a_task_that_swallowed_the_first_cancel() -> None:
    task, reached_wait = await _swallowing_task()
    still = await cancel_and_wait([task], timeout=5)
    assert still == set()
    assert task.cancelled()
    if sys.version_info < (3, 12):
        # The race is real here: the first cancel was swallowed and the task went on.
        assert reached_wait.is_set()


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="fixed in CPython 3.12")
async def test_a_single_cancel_is_not_enough_on_python_3_11() -> None:
    task, _ = await _swallowing_task()
    done, _ = await asyncio.wait([task], timeout=0.5)
    assert done == set(), "one cancel stopped the task; cancel_and_wait may be unneeded"
    await cancel_and_wait([task])


async def test_cancel_and_wait_gives_up_at_the_deadline_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="chatwatch"):
        still = await cancel_and_wait([task], timeout=0.3)
    assert still == {task}
    assert "stubborn" in str([r.__dict__.get("tasks") for r in caplog.records])
    release.set()
    await task


async def test_a_task_that_failed_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise ValueError("boom")

    task = asyncio.create_task(broken(), name="broken")
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="chatwatch"):
        assert await cancel_and_wait([task]) == set()
    [record] = [r for r in caplog.records if r.getMessage() == "task failed"]
    assert record.__dict__["task"] == "broken"
    assert record.exc_info is not None and "boom" in str(record.exc_info[1])
