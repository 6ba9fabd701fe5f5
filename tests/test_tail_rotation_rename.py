"""Scenario: logrotate's default rotation, rename + create.

The writer keeps writing to the renamed file for a while (a logger reopens only when
told), so the old file must be drained through the open descriptor before it is closed.
"""

from __future__ import annotations

from pathlib import Path

from tests.tailkit import running_source, source_config, wait_until
from tests.writer import Writer


async def test_rename_and_create_loses_and_repeats_nothing(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    cfg = source_config(tmp_path / "*.log")
    writer = await Writer.start()
    try:
        await writer.do(f"open old {log}", "write old 0 1000")
        async with running_source(cfg, tmp_path / "cp.json") as src:
            await src.sink.wait_for(1000)
            await writer.do(
                f"rename {log} {log}.1",
                "write old 1000 500",  # the old file is still written after the rename
                f"open new {log}",
                "write new 1500 1000",
                "write old 2500 100",
                "close old",
                "write new 2600 400",
            )
            await src.sink.wait_for(3000)
            # The rotated-away file is closed once it has been quiet for rotate_wait.
            await wait_until(lambda: src.metric("chatwatch_files_watched", "app") == 1)
            assert src.metric("chatwatch_rotations_total", "app", "rename") == 1
        assert sorted(src.sink.numbers()) == list(range(3000)), src.sink.summary(3000)
        paths = {origin.path for origin, _ in src.sink.batches}
        assert paths == {str(log)}
    finally:
        await writer.close()


async def test_rotated_file_still_matching_the_glob_is_the_same_stream(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    cfg = source_config(f"{log}*")
    writer = await Writer.start()
    try:
        await writer.do(f"open old {log}", "write old 0 2000")
        async with running_source(cfg, tmp_path / "cp.json") as src:
            await src.sink.wait_for(2000)
            await writer.do(
                f"rename {log} {log}.1",
                "write old 2000 10",
                f"open new {log}",
                "write new 2010 990",
                f"rename {log}.1 {log}.2",  # logrotate shifting numbered files
                "write old 3000 10",
            )
            await src.sink.wait_for(3010)
            await wait_until(lambda: src.metric("chatwatch_files_watched", "app") == 2)
            assert src.metric("chatwatch_rotations_total", "app", "rename") == 1
        assert sorted(src.sink.numbers()) == list(range(3010)), src.sink.summary(3010)
    finally:
        await writer.close()
