"""Stopping asyncio tasks for certain.

One `Task.cancel()` is not always enough on CPython 3.11: `asyncio.wait_for`, which
aiosmtplib and others use for their timeouts, swallows a cancellation that arrives just as
the operation it waits on completes (CPython gh-86296, fixed in 3.12), and the task carries
on as if nothing happened. Awaiting such a task after one cancel can hang for ever, so
shutdown code cancels with `cancel_and_wait`, which repeats the cancel until the task is
done and gives up after a deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("chatwatch")

RECANCEL_EVERY = 0.05


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[Any]], timeout: float = 2.0
) -> set[asyncio.Task[Any]]:
    """Cancel `tasks` and wait for them; returns those still running after `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    tasks = list(tasks)
    pending = {t for t in tasks if not t.done()}
    while pending:
        for t in pending:
            t.cancel()
        left = deadline - loop.time()
        if left <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(RECANCEL_EVERY, left))
    for t in tasks:
        if t.done() and not t.cancelled() and (exc := t.exception()) is not None:
            log.error("task failed", extra={"task": t.get_name()}, exc_info=exc)
    if pending:
        log.warning(
            "tasks still running after cancel",
            extra={"tasks": sorted(t.get_name() for t in pending)},
        )
    return pending
