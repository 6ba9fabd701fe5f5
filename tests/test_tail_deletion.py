"""Scenario: the log file is deleted (and later created again) while being written.

The writer still holds the deleted file open and writes to it for a while; the agent
must read those lines through its own descriptor, then let the file go (so its disk
space is freed) and pick up the new file under the same name from its first line.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.tailkit import running_source, source_config, wait_until
from tests.writer import Writer


def _held_open(path: Path) -> int:
    """How many of this process's descriptors lead to the deleted file `path`."""
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            if os.readlink(fd) == f"{path} (deleted)":
                count += 1
        except OSError:
            pass
    return count


async def test_deleted_file_is_drained_then_released_and_recreated_file_read(
    tmp_path: Path,
) -> None:
    log = tmp_path / "app.log"
    cfg = source_config(log)
    writer = await Writer.start()
    try:
        await writer.do(f"open old {log}", "write old 0 1000")
        async with running_source(cfg, tmp_path / "cp.json") as src:
            await src.sink.wait_for(1000)
            await writer.do(f"unlink {log}", "write old 1000 500")
            await src.sink.wait_for(1500)
            assert _held_open(log) == 1
            await writer.do(f"open new {log}", "write new 1500 500", "write old 2000 100")
            await writer.do("close old")
            await src.sink.wait_for(2100)
            assert src.metric("chatwatch_rotations_total", "app", "delete") == 1
            await wait_until(lambda: src.metric("chatwatch_files_watched", "app") == 1)
            assert _held_open(log) == 0  # the deleted file's space is freed
        assert sorted(src.sink.numbers()) == list(range(2100)), src.sink.summary(2100)
    finally:
        await writer.close()


async def test_file_deleted_and_never_recreated(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    cfg = source_config(log)
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}", "write w 0 100")
        async with running_source(cfg, tmp_path / "cp.json") as src:
            await src.sink.wait_for(100)
            await writer.do(f"unlink {log}", "write w 100 100", "close w")
            await wait_until(lambda: src.metric("chatwatch_files_watched", "app") == 0)
            assert src.samples("chatwatch_file_lag_bytes") == {}
        assert sorted(src.sink.numbers()) == list(range(200)), src.sink.summary(200)
    finally:
        await writer.close()
