"""Scenario: the log rotates while the agent has read half of a traceback.

The writer wrote a record and the first half of its traceback (in two writes, as a
logger that flushes a line at a time does), the agent read it, then the file rotates:

- renamed away, the writer finishing the traceback in the old file (its descriptor
  still open) before it opens the new one: the agent reads the rest from the old file,
  and the event is whole;
- copied and truncated in place (logrotate's copytruncate) after the traceback was
  finished: the agent reads the copy from the held event's first line, so the event is
  handed on once, whole.

Nothing is lost, nothing counted twice, and the exception types are exact. (Events of
the old and the new file are handed on as each file is read, so the tests compare them
as sets, each with its exception.)
"""

from __future__ import annotations

from pathlib import Path

from tests.tailkit import Running, running_source, source_config, wait_until
from tests.writer import Writer

RECORD = b"2026-01-01 10:00:00,000 [ERROR] support_bot - llm_call failed n=%d"
TRACEBACK = [
    b"Traceback (most recent call last):",
    b'  File "/app/support_bot/llm.py", line 61, in complete',
    b"    raise TimeoutError('timed out')",
    b"TimeoutError: timed out",
    b"",
    b"The above exception was the direct cause of the following exception:",
    b"",
    b"Traceback (most recent call last):",
    b'  File "/app/support_bot/api.py", line 12, in chat',
    b"    raise RuntimeError('LLM call failed') from exc",
    b"RuntimeError: LLM call failed",
]
INFO = b"2026-01-01 10:00:01,000 [INFO] support_bot - request done n=%d"
REGEX = r"^(?P<ts>\S+ \S+) \[(?P<level>\w+)\] (?P<logger>\S+) - (?P<message>.*)$"


def _lines(*lines: bytes) -> str:
    """A `raw` command for the writer: these lines in one write()."""
    data = b"".join(ln + b"\n" for ln in lines)
    return f"raw w {data!r}"


async def _read_to_end(src: Running, path: Path) -> None:
    size = path.stat().st_size
    await wait_until(lambda: src.metric("chatwatch_bytes_read_total", "app") >= size)


def _message(line: bytes) -> str:
    return line.decode().split(" - ", 1)[1]


def _check(src: Running, lines: list[bytes]) -> None:
    """Each record logged once, an error with its whole traceback, an info line without."""
    events = sorted(src.sink.events, key=lambda e: e["message"])
    assert [e["message"] for e in events] == sorted(_message(line) for line in lines)
    for e in events:
        if e["level"] == "ERROR":
            assert e["exception"] == {
                "type": "RuntimeError",
                "message": "LLM call failed",
                "stacktrace": b"\n".join(TRACEBACK).decode(),
            }
        else:
            assert "exception" not in e
    assert src.samples("chatwatch_decode_errors_total") == {}


async def test_renamed_in_the_middle_of_a_traceback(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    cfg = source_config(
        log, format="regex", regex=REGEX, multiline={"preset": "python"}, rotate_wait=0.5
    )
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}", _lines(RECORD % 0, *TRACEBACK[:3]))
        async with running_source(cfg, tmp_path / "cp.json") as src:
            await _read_to_end(src, log)
            await writer.do(
                f"rename {log} {log}.1",
                _lines(*TRACEBACK[3:]),  # the old file, through the open descriptor
                _lines(INFO % 0),
                "close w",
                f"open w {log}",
                _lines(RECORD % 1, *TRACEBACK, INFO % 1),
            )
            await wait_until(lambda: len(src.sink.events) == 4)
            await src.caught_up()
            assert src.metric("chatwatch_rotations_total", "app", "rename") == 1
        _check(src, [RECORD % 0, INFO % 0, RECORD % 1, INFO % 1])
    finally:
        await writer.close()


async def test_copied_and_truncated_in_the_middle_of_a_traceback(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    cfg = source_config(f"{log}*", format="regex", regex=REGEX, multiline={"preset": "python"})
    writer = await Writer.start()
    try:
        # More than 1 KiB before the traceback: the copy is recognised by its first bytes.
        start = [(INFO % n) for n in range(20)]
        await writer.do(f"open w {log}", _lines(*start), _lines(RECORD % 0, *TRACEBACK[:3]))
        async with running_source(cfg, tmp_path / "cp.json") as src:
            await _read_to_end(src, log)
            assert len(src.sink.events) == 20  # the traceback's record is held
            await writer.do(
                _lines(*TRACEBACK[3:], INFO % 20),
                f"copy {log} {log}.1",
                "truncate w",
                _lines(RECORD % 21, *TRACEBACK, INFO % 21),
            )
            await wait_until(lambda: len(src.sink.events) == 24)
            await src.caught_up()
            assert src.metric("chatwatch_rotations_total", "app", "truncate") == 1
        _check(src, [*start, RECORD % 0, INFO % 20, RECORD % 21, INFO % 21])
    finally:
        await writer.close()
