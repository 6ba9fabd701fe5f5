"""Scenario: the agent is slow (its event loop blocked for longer than
`partial_line_timeout`) while the writer writes lines across the read boundary.

A partial line times out only when the file has no more bytes to read: the timeout runs
from when the agent last found the file idle, not from when it read the fragment. A
slow agent must never hand on the start of a line that its writer finished meanwhile
(it would be counted `not_json` and the event lost).

The slowness is injected: a sink that sleeps synchronously (the agent slow in its own
pipeline), or a callback it schedules that does (another stage, such as a long history
copy, blocking the loop after the batch was handed on).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from agent.decode.events import Event, Origin
from tests.tailkit import Collected, running_source, source_config, wait_until
from tests.writer import Writer, line, lines

TIMEOUT = 0.3
STALL = 3 * TIMEOUT


class SlowSink(Collected):
    """Once `armed`, blocks the event loop for `STALL` seconds on every batch;
    `during_stall` is appended to `path` in the middle of the first stall (the writer
    finishing its line while the agent is busy)."""

    def __init__(
        self, during_stall: bytes = b"", path: Path | None = None, elsewhere: bool = False
    ) -> None:
        super().__init__()
        self.armed = True
        self.elsewhere = elsewhere
        self.during_stall = during_stall
        self.path = path
        self.stalls = 0

    def __call__(self, origin: Origin, events: list[Event]) -> None:
        super().__call__(origin, events)
        if not self.armed:
            return
        self.stalls += 1
        if self.elsewhere:
            asyncio.get_running_loop().call_soon(self._stall)
        else:
            self._stall()

    def _stall(self) -> None:
        time.sleep(STALL / 2)
        if self.during_stall and self.path is not None:
            _append(self.path, self.during_stall)
            self.during_stall = b""
        time.sleep(STALL / 2)


def _append(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


@pytest.mark.parametrize("elsewhere", [False, True], ids=["slow_sink", "slow_other_stage"])
async def test_line_finished_while_the_agent_was_blocked_arrives_whole(
    tmp_path: Path, elsewhere: bool
) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(lines(0, 5))
    split = line(10)
    head, rest = split[:20], split[20:]
    sink = SlowSink(during_stall=rest + lines(11, 9), path=log, elsewhere=elsewhere)
    sink.armed = False
    cfg = source_config(log, partial_line_timeout=TIMEOUT)
    async with running_source(cfg, tmp_path / "cp.json", sink) as src:
        await src.sink.wait_for(5)
        # Five lines and the start of the next: one read hands on five (the sink stalls,
        # and the writer finishes the line meanwhile) and holds the start.
        sink.armed = True
        _append(log, lines(5, 5) + head)
        await wait_until(lambda: not sink.during_stall)
        await src.caught_up()
    assert sink.stalls >= 1
    assert sink.numbers() == list(range(20)), sink.summary(20)
    assert sink.events[10] == {"n": 10, "msg": "chat message 10", "pad": "x" * 10}
    assert src.samples("chatwatch_decode_errors_total") == {}


async def test_paced_writer_and_a_slow_agent_lose_no_line(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    cfg = source_config(log, partial_line_timeout=TIMEOUT)
    sink = SlowSink()
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}")
        async with running_source(cfg, tmp_path / "cp.json", sink) as src:
            # 40-byte writes 0.05 s apart: most reads end mid-line, and every batch
            # stalls the agent for three partial-line timeouts.
            await writer.do("pace w 0 30 40 0.05")
            await src.caught_up(timeout=60)
        assert sink.stalls >= 2, sink.stalls  # the agent was blocked, repeatedly
        assert sorted(sink.numbers()) == list(range(30)), sink.summary(30)
        assert src.samples("chatwatch_decode_errors_total") == {}
    finally:
        await writer.close()
