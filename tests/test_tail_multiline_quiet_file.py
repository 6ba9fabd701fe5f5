"""Scenario: the last event of a file is a traceback, and the file goes quiet.

An event is complete only when the line after it begins the next one: a traceback
written in several writes stays one event however the reads fall, and the last event
of a file waits, its checkpoint at its first line, until the next line comes or the
file has been quiet for `multiline.timeout`.
"""

from __future__ import annotations

from pathlib import Path

from tests.tailkit import Running, running_source, source_config, wait_until
from tests.writer import Writer

REGEX = r"^(?P<ts>\S+ \S+) \[(?P<level>\w+)\] (?P<logger>\S+) - (?P<message>.*)$"
ERROR = b"2026-01-01 10:00:00,000 [ERROR] bot - reply failed"
TRACEBACK = [
    b"Traceback (most recent call last):",
    b'  File "/app/bot.py", line 40, in reply',
    b"    tokens = usage['completion_tokens']",
    b"             ~~~~~^^^^^^^^^^^^^^^^^^^^^",
    b"KeyError: 'completion_tokens'",
]
NEXT = b"2026-01-01 10:00:02,000 [INFO] bot - next"


def _write(*lines: bytes) -> str:
    data = b"".join(line + b"\n" for line in lines)
    return f"raw w {data!r}"


async def _read(src: Running, log: Path) -> None:
    """Until the source read everything in the file (not: handed it on)."""
    size = log.stat().st_size
    await wait_until(lambda: src.metric("chatwatch_bytes_read_total", "app") == size)


async def test_a_traceback_written_in_pieces_is_one_event(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    cfg = source_config(
        log, format="regex", regex=REGEX, multiline={"preset": "python", "timeout": "1h"}
    )
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}")
        async with running_source(cfg, tmp_path / "cp.json") as src:
            for piece in ([ERROR, TRACEBACK[0]], TRACEBACK[1:3], TRACEBACK[3:]):
                await writer.do(_write(*piece))
                await _read(src, log)  # each piece read on its own
                assert src.sink.events == []
                assert src.handed_on(log) == 0  # the event's first line
            await writer.do(_write(NEXT))
            await wait_until(lambda: len(src.sink.events) == 1)
            assert src.handed_on(log) == log.stat().st_size - len(NEXT) - 1
        [event] = src.sink.events
        assert event["message"] == "reply failed" and event["level"] == "ERROR"
        assert event["exception"] == {
            "type": "KeyError",
            "message": "'completion_tokens'",
            "stacktrace": b"\n".join(TRACEBACK).decode(),
        }
    finally:
        await writer.close()


async def test_the_last_event_goes_on_once_the_file_is_quiet(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    cfg = source_config(
        log, format="regex", regex=REGEX, multiline={"preset": "python", "timeout": "0.3s"}
    )
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}", _write(NEXT, ERROR, *TRACEBACK))
        async with running_source(cfg, tmp_path / "cp.json") as src:
            await wait_until(lambda: len(src.sink.events) == 2)  # no next line: the timeout
            await src.caught_up()
            assert src.sink.events[1]["exception"]["type"] == "KeyError"
            # A line after the quiet spell begins a new event: nothing joins the old one.
            await writer.do(_write(b"  an indented line after the timeout", NEXT))
            await wait_until(lambda: len(src.sink.events) == 3)
            await src.caught_up()
        assert [e["message"] for e in src.sink.events] == ["next", "reply failed", "next"]
        assert src.samples("chatwatch_decode_errors_total") == {
            ("app", "no_match"): 1.0  # the indented line, alone
        }
    finally:
        await writer.close()
