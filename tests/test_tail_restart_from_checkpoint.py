"""Scenario: the agent stops, the log goes on (and rotates), the agent starts again.

Reading resumes exactly where the last run's checkpoint says, also for a file that was
renamed or copied-and-truncated while the agent was down; a file created while it was
down is read from its first line. `start_at: end` does not skip any of it: it applies to
a source's first run only.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.tailkit import running_source, source_config
from tests.writer import Writer


async def test_resumes_at_the_checkpoint(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    checkpoint = tmp_path / "state" / "checkpoints.json"
    cfg = source_config(log, start_at="end")
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}")
        async with running_source(cfg, checkpoint) as first:
            await writer.do("write w 0 1000")
            await first.sink.wait_for(1000)
        saved = orjson.loads(checkpoint.read_bytes())
        [entry] = saved["sources"]["app"].values()
        assert entry["offset"] == log.stat().st_size
        assert entry["path"] == str(log)
        assert list(checkpoint.parent.iterdir()) == [checkpoint]  # no temporary files left

        await writer.do("write w 1000 500")  # while the agent is down
        async with running_source(cfg, checkpoint) as second:
            await writer.do("write w 1500 500")
            await second.sink.wait_for(1000)
            await second.caught_up()
        assert first.sink.numbers() == list(range(1000))
        assert second.sink.numbers() == list(range(1000, 2000)), second.sink.summary()
    finally:
        await writer.close()


async def test_rotations_while_down_are_followed(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    checkpoint = tmp_path / "cp.json"
    cfg = source_config(f"{log}*", start_at="end")
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}")
        async with running_source(cfg, checkpoint) as first:
            await writer.do("write w 0 1000")
            await first.sink.wait_for(1000)
        # Down: more lines, a rename rotation, a new file, more lines, a copytruncate.
        await writer.do(
            "write w 1000 500",
            f"rename {log} {log}.1",
            "write w 1500 10",
            "close w",
            f"open w {log}",
            "write w 1510 990",
            f"copy {log} {log}.2",
            "truncate w",
            "write w 2500 500",
        )
        async with running_source(cfg, checkpoint) as second:
            await second.sink.wait_for(2000)
            await second.caught_up()
        assert sorted(second.sink.numbers()) == list(range(1000, 3000)), second.sink.summary()
    finally:
        await writer.close()


async def test_file_replaced_while_down_is_read_from_the_start(tmp_path: Path) -> None:
    """Same path, new content (deleted and recreated, possibly reusing the inode)."""
    log = tmp_path / "app.log"
    checkpoint = tmp_path / "cp.json"
    cfg = source_config(log, start_at="end")
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}", "write w 0 2000")
        async with running_source(cfg, checkpoint) as first:
            await writer.do("write w 2000 10")
            await first.sink.wait_for(10)
        await writer.do(f"unlink {log}", "close w", f"open w {log}", "write w 3000 3000")
        async with running_source(cfg, checkpoint) as second:
            await second.sink.wait_for(3000)
            await second.caught_up()
        assert first.sink.numbers() == list(range(2000, 2010))
        assert second.sink.numbers() == list(range(3000, 6000)), second.sink.summary()
    finally:
        await writer.close()
