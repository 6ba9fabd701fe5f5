"""Scenario: a line far longer than `max_line_bytes`, and lines that are not UTF-8.

The long line is skipped whole and counted (`too_long`), without being buffered, and the
file goes on; bytes that are not UTF-8 are counted by the decoder and never stop anything.
"""

from __future__ import annotations

from pathlib import Path

from agent.sources.lines import LineSplitter
from tests.tailkit import running_source, source_config, wait_until
from tests.writer import Writer


async def test_long_line_is_skipped_whole_and_counted(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    cfg = source_config(log, max_line_bytes=4096)
    big = "x" * 3_000_000  # 3 MB: more than one read chunk, far more than the limit
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}", "write w 0 10")
        async with running_source(cfg, tmp_path / "cp.json") as src:
            await src.sink.wait_for(10)
            await writer.do(f"""raw w b'{{"n": -1, "pad": "{big[:100]}'""")
            for _ in range(30):
                await writer.do(f"raw w b'{big[:100_000]}'")
            await writer.do("""raw w b'"}\\n'""", "write w 10 10")
            await src.sink.wait_for(20)
            await wait_until(
                lambda: src.metric("chatwatch_decode_errors_total", "app", "too_long") == 1
            )
        assert src.sink.numbers() == list(range(20)), src.sink.summary(20)
    finally:
        await writer.close()


async def test_invalid_utf8_is_counted_and_the_file_goes_on(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    cfg = source_config(log)
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}", "write w 0 10", "raw w b'\\xff\\xfe\\xc3(\\n'")
        async with running_source(cfg, tmp_path / "cp.json") as src:
            await writer.do("""raw w b'{"n": 10, "msg": "caf\\xe9"}\\n'""", "write w 11 9")
            await src.sink.wait_for(19)
            await wait_until(
                lambda: sum(src.samples("chatwatch_decode_errors_total").values()) == 2
            )
        assert src.sink.numbers() == [*range(10), *range(11, 20)]
    finally:
        await writer.close()


def test_splitter_never_buffers_a_skipped_line() -> None:
    skipped: list[int] = []
    splitter = LineSplitter(1000, lambda: skipped.append(1))
    assert splitter.feed(b'{"a": 1}\n{"b":') == [b'{"a": 1}']
    for _ in range(100):
        assert splitter.feed(b"y" * 65536) == []
        assert splitter.partial == b""  # nothing of the long line is kept
    assert splitter.feed(b'z"}\n{"c": 3}\n') == [b'{"c": 3}']
    assert skipped == [1]
    assert splitter.uncommitted == 0
