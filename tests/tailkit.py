"""Test harness for the tailing scenarios: a running FileSource and what it handed on."""

from __future__ import annotations

import asyncio
import glob
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson

from agent.decode.events import Event, Origin
from agent.sources.checkpoint import Checkpoints
from agent.sources.config import SourceConfig
from agent.sources.tail import FileSource
from agent.support.selfmetrics import SelfMetrics


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
        """The label sets counted so far (counters start at 0 for every reason: left out)."""
        family = self.stats.family(name)
        return {} if family is None else {k: v for k, v in family.values.items() if v}

    def handed_on(self, path: Path | str) -> int | None:
        """How far the file now at `path` was handed on: its live checkpoint's offset.

        The checkpoint advances only after the sink returned, to just past the last line
        handed on. None while the source is not reading that file: not found yet, or
        held unread as a possible copy of a file still open (see `agent/sources/tail.py`).
        """
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        name = self.source.cfg.name
        for cp in self.checkpoints.for_source(name):
            if (cp.dev, cp.ino) == (st.st_dev, st.st_ino) and self.checkpoints.is_live(
                name, cp.key
            ):
                return cp.offset
        return None

    def behind(self) -> dict[str, tuple[int | None, int]]:
        """Files matching the source's globs not handed on up to their end: (offset, size)."""
        out: dict[str, tuple[int | None, int]] = {}
        for pattern in self.source.cfg.paths:
            for path in glob.glob(os.path.abspath(pattern), recursive=True):
                try:
                    size = os.stat(path).st_size
                except OSError:
                    continue  # vanished
                offset = self.handed_on(path)
                if size and offset != size:
                    out[path] = (offset, size)
        return out

    async def caught_up(self, timeout: float = 20.0) -> None:
        """Until every file matching the globs was handed on up to its current size.

        The barrier "everything up to offset N was processed", instead of sleeping to
        see that nothing more happens: once it holds, every line on disk went through
        the sink, and a copy the source held back has been judged (it counts only once
        it is read from where it continues). Nothing more can then be handed on unless
        a file changes, or a partial line times out (a file ending in one never
        catches up). Files drained after they left the globs are not checked.
        """
        await wait_until(lambda: not self.behind(), timeout, lambda: f"behind: {self.behind()}")


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


RUNNER = Path(__file__).resolve().parent / "tail_runner.py"
REPO = RUNNER.parent.parent


class RunnerProcess:
    """`tests/tail_runner.py` running as a separate process; collects what it prints."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[Event] = []
        self.stats: dict[str, dict[str, float]] | None = None
        self.opened = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls, cfg: SourceConfig, checkpoint_path: Path, user: int | None = None
    ) -> RunnerProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(RUNNER),
            cfg.model_dump_json(),
            str(checkpoint_path),
            *([] if user is None else [str(user)]),
            stdout=asyncio.subprocess.PIPE,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        runner = cls(proc)
        await asyncio.wait_for(runner.opened.wait(), 20)
        return runner

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            msg = orjson.loads(raw)
            if "event" in msg:
                self.events.append(msg["event"])
            elif "stats" in msg:
                self.stats = msg["stats"]
            elif "opened" in msg:
                self.opened.set()

    def numbers(self) -> list[int]:
        return [e["n"] for e in self.events]

    async def terminate(self, within: float = 5.0) -> int:
        """SIGTERM; returns the exit code, which must come within `within` seconds."""
        self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), within)
        await asyncio.wait_for(self._reader, 5)
        return code

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()
