"""When the live agent evaluates its rules: on the grid, and early after new samples.

The regular evaluations run every `evaluation_interval` on the wall-clock grid; they
advance every alert (`for`, `keep_firing_for`, resolving, staleness, `absent()`). On
the grid alone, the line that crosses a threshold waits up to a whole interval for the
next one. So when new samples arrive, the agent evaluates early, between two regular
evaluations: an early evaluation only starts the alerts of rules without `for`, which
fire on the evaluation that first sees them (group.py, `AlertingRule.fire_new`), and
changes nothing else: `for` and `keep_firing_for` are measured on the regular
evaluations and alerts resolve only there. The one difference it can make is that of a
closer look: a sample that crosses the threshold and falls back before the next tick
fires (and resolves on that tick), where the grid alone would not have seen it.

When, exactly (`early_at`):

* soon: samples that arrive while the agent is idle are evaluated at once;
* coalesced: at most one early evaluation every `EARLY_GAP` after the previous
  evaluation (early or regular), however many batches arrive meanwhile;
* affordable: the gap is also at least `1 / COST_SHARE` times what the last evaluation
  took (the snapshot into the history included), so early evaluations never take more
  than a small share of a core; a cycle that takes a tenth of the interval leaves no
  room for any;
* not when the regular evaluation comes as soon: none within `GRID_MARGIN` before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

EARLY_GAP = 0.2
"""Seconds between an evaluation and the next early one, at least."""
COST_SHARE = 0.1
"""At most this share of the time goes to early evaluations (from the last one's cost)."""
GRID_MARGIN = 0.05
"""Seconds before a regular evaluation within which none is brought forward."""


def early_at(arrived: float, last_end: float, last_cost: float, next_tick: float) -> float | None:
    """When to evaluate early for samples that arrived at `arrived`, the last evaluation
    having ended at `last_end` and taken `last_cost` seconds; None when the regular
    evaluation at `next_tick` comes as soon. All in seconds of one clock."""
    at = max(arrived, last_end + max(EARLY_GAP, last_cost / COST_SHARE))
    if at > next_tick - GRID_MARGIN:
        return None
    return at


Tick = Callable[[float, bool], None]
"""Evaluate at `now` (Unix seconds); the flag says whether it is an early evaluation."""


class Evaluations:
    """Runs the evaluations of the live agent: `run()` is its task, `samples_arrived()`
    is called after each batch of events is counted."""

    def __init__(
        self,
        tick: Tick,
        interval: float,
        evaluates_early: Callable[[], bool],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tick = tick
        self._interval = interval
        self._evaluates_early = evaluates_early
        self._clock = clock
        self._arrived: float | None = None
        """When the first samples not yet evaluated arrived."""
        self._wake = asyncio.Event()
        self._last_end = -float("inf")
        self._last_cost = 0.0

    def samples_arrived(self) -> None:
        if self._arrived is None:
            self._arrived = self._clock()
            self._wake.set()

    async def run(self) -> None:
        interval = self._interval
        while True:
            now = self._clock()
            next_tick = now + interval - (now % interval)
            at = None
            if self._arrived is not None and self._evaluates_early():
                at = early_at(self._arrived, self._last_end, self._last_cost, next_tick)
            self._wake.clear()
            if await self._sleep((at if at is not None else next_tick) - now):
                continue  # samples arrived: see whether they are evaluated early
            self._evaluate(self._clock(), early=at is not None)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep `seconds`; True if samples arrived meanwhile (cut short)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, seconds)):
                await self._wake.wait()
                return True
        return False

    def _evaluate(self, now: float, early: bool) -> None:
        self._arrived = None
        started = time.perf_counter()
        self._tick(now, early)
        self._last_cost = time.perf_counter() - started
        self._last_end = self._clock()
