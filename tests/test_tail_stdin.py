"""Scenario: `chatbot | chatwatch run` - lines arrive on standard input through a pipe.

A real writer process writes into the pipe, splitting lines across writes; at end of
input the unfinished last line is handed on and the source finishes. `stop()` returns
promptly even while the writer keeps the pipe open and silent.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from agent.sources.config import SourceConfig
from agent.sources.stdin import StdinSource
from agent.support.selfmetrics import SelfMetrics
from tests.tailkit import Collected
from tests.writer import Writer, line

CFG = SourceConfig(name="piped", stdin=True, format="json")


async def test_lines_through_a_pipe_until_end_of_input() -> None:
    read_end, write_end = os.pipe()
    writer = await Writer.start(pass_fds=(write_end,))
    os.close(write_end)
    sink = Collected()
    stats = SelfMetrics()
    with os.fdopen(read_end, "rb") as stream:
        source = StdinSource(CFG, sink, stats, stream=stream)
        task = asyncio.create_task(source.run())
        try:
            await writer.do(
                f"fd p {write_end}",
                "pace p 0 5000 333 0.0005",
                "raw p b'not json\\n'",
                """raw p b'{"n": 5000}'""",  # no newline: handed on at end of input
                "close p",
            )
            await asyncio.wait_for(task, 20)  # end of input ends the source
        finally:
            await writer.close()
    assert sink.numbers() == list(range(5001)), sink.summary(5001)
    assert {origin.path for origin, _ in sink.batches} == {"-"}
    assert stats.family("chatwatch_events_total").get(("piped",)) == 5001  # type: ignore[union-attr]
    errors = stats.family("chatwatch_decode_errors_total")
    assert errors is not None and errors.get(("piped", "not_json")) == 1


async def test_stop_while_the_pipe_is_open_and_silent() -> None:
    read_end, write_end = os.pipe()
    writer = await Writer.start(pass_fds=(write_end,))
    os.close(write_end)
    sink = Collected()
    try:
        with os.fdopen(read_end, "rb") as stream:
            source = StdinSource(CFG, sink, SelfMetrics(), stream=stream)
            task = asyncio.create_task(source.run())
            await writer.do(f"fd p {write_end}", "write p 0 100", """raw p b'{"n": 100}'""")
            await sink.wait_for(100)
            started = time.monotonic()
            await asyncio.wait_for(source.stop(), 5)
            await asyncio.wait_for(task, 5)
            assert time.monotonic() - started < 1.0
    finally:
        await writer.close()
    # What was read is handed on, the unfinished line included (stdin has no next run).
    assert sink.numbers() == list(range(101))


async def test_stdin_redirected_from_a_regular_file(tmp_path: Path) -> None:
    """`chatwatch run < app.log`: a regular file cannot be polled; it is read to its end."""
    log = tmp_path / "app.log"
    log.write_bytes(b"".join(line(n) for n in range(20000)) + b'{"n": 20000}')
    sink = Collected()
    with log.open("rb") as stream:
        source = StdinSource(CFG, sink, SelfMetrics(), stream=stream)
        await asyncio.wait_for(source.run(), 20)
    assert sink.numbers() == list(range(20001)), sink.summary(20001)
