"""Scenario: the log file is truncated in place (`: > app.log`, or a writer's ftruncate).

Lines written before a truncation that no one read are gone with it, for any tailer, so
the writer waits for the agent to catch up before truncating; then every line written
after the truncation must come out once, whether the agent notices the file shrank or
finds it already grown past the old offset.
"""

from __future__ import annotations

from pathlib import Path

from tests.tailkit import running_source, source_config, wait_until
from tests.writer import Writer


async def test_truncated_file_is_read_again_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    cfg = source_config(log)
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}", "write w 0 1000")
        async with running_source(cfg, tmp_path / "cp.json") as src:
            await src.sink.wait_for(1000)
            await writer.do("truncate w", "write w 1000 10")
            await src.sink.wait_for(1010)
            await writer.do("truncate w")
            # The agent sees the file shrink before anything is written again.
            await wait_until(
                lambda: src.metric("chatwatch_rotations_total", "app", "truncate") == 2
            )
            await writer.do("write w 1010 10")
            await src.sink.wait_for(1020)
            assert src.metric("chatwatch_rotations_total", "app", "truncate") == 2
        assert sorted(src.sink.numbers()) == list(range(1020)), src.sink.summary(1020)
    finally:
        await writer.close()


async def test_truncated_and_regrown_past_the_old_offset(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    cfg = source_config(log)
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}", "write w 0 100")
        async with running_source(cfg, tmp_path / "cp.json") as src:
            await src.sink.wait_for(100)
            # Before the agent looks again the file is bigger than before: only its
            # content tells that it was truncated.
            await writer.do("truncate w", "write w 100 1000")
            await src.sink.wait_for(1100)
            await src.caught_up()
            assert src.metric("chatwatch_rotations_total", "app", "truncate") == 1
        assert sorted(src.sink.numbers()) == list(range(1100)), src.sink.summary(1100)
    finally:
        await writer.close()
