"""Scenario: the log file (or even its directory) does not exist when the agent starts.

A file that appears while the agent runs is new: it is read from its first line, even
with `start_at: end` (which is about files that existed before the agent's first run).
"""

from __future__ import annotations

from pathlib import Path

from tests.tailkit import running_source, source_config
from tests.writer import Writer


async def test_file_created_after_start_is_read_from_its_first_line(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    cfg = source_config(tmp_path / "*.log", start_at="end")
    writer = await Writer.start()
    try:
        async with running_source(cfg, tmp_path / "cp.json") as src:
            assert src.metric("chatwatch_files_watched", "app") == 0
            await writer.do(f"open w {log}", "write w 0 500")
            await src.sink.wait_for(500)
            await writer.do(f"open other {tmp_path / 'other.log'}", "write other 500 500")
            await src.sink.wait_for(1000)
            assert src.metric("chatwatch_files_watched", "app") == 2
        assert sorted(src.sink.numbers()) == list(range(1000)), src.sink.summary(1000)
    finally:
        await writer.close()


async def test_directory_created_after_start(tmp_path: Path) -> None:
    """No directory to watch yet: the periodic stat finds it, then inotify takes over."""
    logs = tmp_path / "logs"
    log = logs / "app.log"
    cfg = source_config(logs / "*.log", stat_interval=1.0)
    writer = await Writer.start()
    try:
        async with running_source(cfg, tmp_path / "cp.json") as src:
            logs.mkdir()
            await writer.do(f"open w {log}", "write w 0 100")
            await src.sink.wait_for(100, timeout=20)
            await writer.do("write w 100 100")
            await src.sink.wait_for(200)
        assert sorted(src.sink.numbers()) == list(range(200)), src.sink.summary(200)
    finally:
        await writer.close()


async def test_start_at_end_skips_what_existed_before_the_first_run(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    cfg = source_config(log, start_at="end")
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}", "write w 0 100", """raw w b'{"n": -1, "half'""")
        async with running_source(cfg, tmp_path / "cp.json") as src:
            await writer.do("""raw w b' line"}\\n'""", "write w 100 100")
            await src.sink.wait_for(100)
        assert src.sink.numbers() == list(range(100, 200)), src.sink.summary()
    finally:
        await writer.close()
