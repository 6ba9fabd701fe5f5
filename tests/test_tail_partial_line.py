"""Scenario: the last line of a file has no newline yet.

It is held until its newline arrives; if the file stays idle for
`partial_line_timeout`, or is rotated away, it is handed on as it is, and the rest of
that line, should it come later, is not handed on a second time. At shutdown a fresh
partial line is left for the next run, which reads it whole.
"""

from __future__ import annotations

from pathlib import Path

from tests.tailkit import running_source, source_config, wait_until
from tests.writer import Writer


async def test_partial_line_is_held_until_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    cfg = source_config(log)
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}", "write w 0 10")
        async with running_source(cfg, tmp_path / "cp.json") as src:
            await src.sink.wait_for(10)
            await writer.do("""raw w b'{"n": 10, "msg": "sp'""")
            # Read to the end of the file, handed on up to the start of the partial line.
            size = log.stat().st_size
            await wait_until(lambda: src.metric("chatwatch_bytes_read_total", "app") == size)
            assert len(src.sink.events) == 10  # not handed on in pieces
            assert src.handed_on(log) == size - len(b'{"n": 10, "msg": "sp')
            await writer.do("""raw w b'lit"}\\n'""", "write w 11 9")
            await src.sink.wait_for(20)
        assert sorted(src.sink.numbers()) == list(range(20)), src.sink.summary(20)
        assert src.sink.events[10] == {"n": 10, "msg": "split"}
        assert src.samples("chatwatch_decode_errors_total") == {}
    finally:
        await writer.close()


async def test_idle_partial_line_is_handed_on_after_the_timeout(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    cfg = source_config(log, partial_line_timeout=1.0)
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}", "write w 0 10")
        async with running_source(cfg, tmp_path / "cp.json") as src:
            await src.sink.wait_for(10)
            # A writer that writes the newline separately, and late.
            await writer.do("""raw w b'{"n": 10}'""")
            await src.sink.wait_for(11, timeout=10)
            await writer.do("raw w b'\\n'", "write w 11 9")
            await src.sink.wait_for(20)
            await src.caught_up()  # the late newline was skipped, not handed on again
        assert sorted(src.sink.numbers()) == list(range(20)), src.sink.summary(20)
        assert src.samples("chatwatch_decode_errors_total") == {}
    finally:
        await writer.close()


async def test_partial_line_of_a_file_rotated_away_is_handed_on(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    cfg = source_config(tmp_path / "*.log", rotate_wait=0.5)
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}", "write w 0 10", """raw w b'{"n": 10}'""")
        async with running_source(cfg, tmp_path / "cp.json") as src:
            await src.sink.wait_for(10)
            await writer.do(f"rename {log} {log}.1", "close w")
            await src.sink.wait_for(11)
            await wait_until(lambda: src.metric("chatwatch_files_watched", "app") == 0)
        assert sorted(src.sink.numbers()) == list(range(11)), src.sink.summary(11)
    finally:
        await writer.close()


async def test_partial_line_at_shutdown_is_read_whole_by_the_next_run(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    checkpoint = tmp_path / "cp.json"
    cfg = source_config(log)
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}", "write w 0 10", """raw w b'{"n": 10, "msg": "sp'""")
        async with running_source(cfg, checkpoint) as first:
            await first.sink.wait_for(10)
            # The partial line was read (and held) before the stop.
            size = log.stat().st_size
            await wait_until(lambda: first.metric("chatwatch_bytes_read_total", "app") == size)
        await writer.do("""raw w b'lit"}\\n'""", "write w 11 9")
        async with running_source(cfg, checkpoint) as second:
            await second.sink.wait_for(10)
            await second.caught_up()
        assert first.sink.numbers() == list(range(10))
        assert second.sink.numbers() == list(range(10, 20))
        assert second.sink.events[0] == {"n": 10, "msg": "split"}
    finally:
        await writer.close()
