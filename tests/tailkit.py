"""Test harness for the tailing scenarios: a running FileSource and what it handed on."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from agent.events import Event, Origin
from agent.selfmetrics import SelfMetrics
from agent.sources.checkpoint import Checkpoints
from agent.sources.config import SourceConfig
from agent.sources.tail import FileSource


def source_config(*paths: Path | str, **overrides: Any) -> SourceConfig:
    """A source for the scenarios: the periodic stat is far away, so inotify must work."""
    settings: dict[str, Any] = {
        "name": "app",
        "paths": [str(p) for p in paths],
        "format": "json",
        "start_at": "beginning",
        "stat_interval": 60.0,
        "rotate_wait": 1.0,
        "partial_line_timeout": 30.0,
        "permission_retry": 0.5,
    }
    settings.update(overrides)
    return SourceConfig.model_validate(settings)


class Collected:
    """The sink: every batch handed on, in order."""

    def __init__(self) -> None:
        self.batches: list[tuple[Origin, list[Event]]] = []
        self.events: list[Event] = []

    def __call__(self, origin: Origin, events: list[Event]) -> None:
        self.batches.append((origin, list(events)))
        self.events.extend(events)

    def numbers(self) -> list[int]:
        return [e["n"] for e in self.events]

    def duplicates(self) -> dict[int, int]:
        return {n: c for n, c in Counter(self.numbers()).items() if c > 1}

    async def wait_for(self, count: int, timeout: float = 20.0) -> None:
        """Until at least `count` events were handed on (fails after `timeout`)."""
        await wait_until(lambda: len(self.events) >= count, timeout, lambda: self.summary(count))

    def summary(self, expected: int | None = None) -> str:
        got = self.numbers()
        text = f"{len(got)} events"
        if expected is not None:
            missing = sorted(set(range(expected)) - set(got))
            text += f" (expected {expected}; missing {missing[:20]}...)"
        dups = self.duplicates()
        if dups:
            text += f"; duplicates {list(dups.items())[:20]}"
        return text


async def wait_until(
    cond: Callable[[], bool], timeout: float = 20.0, why: Callable[[], str] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s" + (f": {why()}" if why else ""))
        await asyncio.sleep(0.02)


class Running:
    def __init__(
        self, source: FileSource, sink: Collected, stats: SelfMetrics, checkpoints: Checkpoints
    ) -> None:
        self.source = source
        self.sink = sink
        self.stats = stats
        self.checkpoints = checkpoints

    def metric(self, name: str, *labels: str) -> float:
        family = self.stats.family(name)
        return 0.0 if family is None else family.get(tuple(labels))

    def samples(self, name: str) -> dict[tuple[str, ...], float]:
        family = self.stats.family(name)
        return {} if family is None else dict(family.values)


@asynccontextmanager
async def running_source(
    cfg: SourceConfig,
    checkpoint_path: Path,
    sink: Collected | None = None,
) -> AsyncIterator[Running]:
    """A FileSource running in this loop; at exit it is stopped and checkpoints saved."""
    stats = SelfMetrics()
    checkpoints = Checkpoints(checkpoint_path, stats)
    checkpoints.load()
    sink = sink if sink is not None else Collected()
    source = FileSource(cfg, sink, checkpoints, stats)
    task = asyncio.create_task(source.run())
    try:
        await asyncio.wait_for(source.opened.wait(), 10)
        yield Running(source, sink, stats, checkpoints)
    finally:
        await asyncio.wait_for(source.stop(), 10)
        await asyncio.wait_for(task, 10)
        assert checkpoints.save()
