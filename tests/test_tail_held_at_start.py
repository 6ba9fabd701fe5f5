"""Scenario: the agent starts after a downtime; its file source is held at start.

The backlog (what the file held when found at start, since the checkpoint) is read
only when the agent asks for it (`read_backlog()`), and nothing appended after start
is read before `release()`: the agent reads the backlog first (in the log's own time
for sources with a timestamp), evaluates once, and only then tails live.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent.sources.checkpoint import Checkpoints
from agent.sources.tail import FileSource
from agent.support.selfmetrics import SelfMetrics
from tests.tailkit import Collected, running_source, source_config
from tests.writer import Writer


async def test_backlog_read_on_request_and_new_lines_only_once_released(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    checkpoint = tmp_path / "cp.json"
    cfg = source_config(log)
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}")
        async with running_source(cfg, checkpoint) as first:
            await writer.do("write w 0 1000")
            await first.sink.wait_for(1000)
        read = log.stat().st_size
        await writer.do("write w 1000 500")  # while the agent is down: the backlog
        backlog = log.stat().st_size - read

        checkpoints = Checkpoints(checkpoint, SelfMetrics())
        checkpoints.load()
        sink = Collected()
        source = FileSource(cfg, sink, checkpoints, SelfMetrics())
        source.hold_at_start(read_backlog=False)
        task = asyncio.create_task(source.run())
        try:
            await source.opened.wait()
            await writer.do("write w 1500 500")  # after start: live lines
            await source.caught_up.wait()  # a turn of its loop: it read what it may
            assert sink.events == []
            assert list(source.backlog().values()) == [backlog]

            source.read_backlog()
            await asyncio.wait_for(source.backlog_read.wait(), 10)
            assert sink.numbers() == list(range(1000, 1500))
            assert list(source.backlog().values()) == [0]

            source.release()
            await sink.wait_for(1000)
            assert sink.numbers() == list(range(1000, 2000)), sink.summary()
            assert source.backlog() == {}
        finally:
            await source.stop()
            await task
    finally:
        await writer.close()


async def test_a_file_truncated_while_held_is_read_from_its_start_once_released(
    tmp_path: Path,
) -> None:
    log = tmp_path / "app.log"
    checkpoint = tmp_path / "cp.json"
    cfg = source_config(log)
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}")
        async with running_source(cfg, checkpoint) as first:
            await writer.do("write w 0 100")
            await first.sink.wait_for(100)
        await writer.do("write w 100 100")

        checkpoints = Checkpoints(checkpoint, SelfMetrics())
        checkpoints.load()
        sink = Collected()
        source = FileSource(cfg, sink, checkpoints, SelfMetrics())
        source.hold_at_start(read_backlog=True)
        task = asyncio.create_task(source.run())
        try:
            await asyncio.wait_for(source.backlog_read.wait(), 10)
            assert sink.numbers() == list(range(100, 200))
            await writer.do("truncate w", "write w 200 10")  # live, while still held
            source.release()
            await sink.wait_for(110)
            assert sink.numbers() == list(range(100, 210)), sink.summary()
        finally:
            await source.stop()
            await task
    finally:
        await writer.close()
